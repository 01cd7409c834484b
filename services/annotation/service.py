"""The annotation service. Its labels, reviews and releases arrive with the annotation issue; today it
runs its bus plumbing (outbox, dead letters) and owns the releases bucket."""

from __future__ import annotations

from shared.service import Service

service = Service("annotation", buckets=("releases",))
