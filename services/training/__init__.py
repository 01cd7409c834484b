"""Training: trains torch models on a release, evaluates, exports ONNX into the Triton repository."""
