"""Training: trains torch models on a release, evaluates, exports ONNX into the Triton repository."""

from services.training.service import service

# Guarded: the trainer processes (multiprocessing's spawn) import this module again as `__mp_main__`.
if __name__ == "__main__":
    service.main()
