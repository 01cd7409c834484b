"""Inference: calls Triton to auto-label, tag and rank; runs live pipelines."""
