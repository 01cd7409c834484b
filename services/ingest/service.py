"""The ingest service. Its upload paths arrive with the catalog and ingest issue; today it runs its bus
plumbing and owns the staging, media and thumbnail buckets."""

from __future__ import annotations

from shared.service import Service

service = Service("ingest", buckets=("staging", "media", "thumbs"))
