"""The training service. Runs arrive with the training issue; today it runs its bus plumbing and owns
the model repository bucket Triton loads from."""

from __future__ import annotations

from shared.service import Service

service = Service("training", buckets=("models",))
