"""Training's machine learning core: data, models, losses, training loop, evaluation, export (torch/numpy only).
Decoding outputs into predictions is shared/predictions.py: inference needs it too."""
