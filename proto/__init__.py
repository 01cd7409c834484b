"""The bus contract: every subject name and every message type, nothing else."""
