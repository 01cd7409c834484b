"""Training's machine learning core: data, models, losses, training loop, evaluation, decoding (torch/numpy only)."""
