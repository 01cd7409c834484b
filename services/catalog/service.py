"""The catalog service: what it answers on the bus and what it does at start-up."""

from __future__ import annotations

from pathlib import Path

from proto import subjects
from services.catalog import (
    access,
    apikeys,
    datasets,
    embeddings,
    labels_summary,
    media,
    projects,
    samples,
    schema,
    search,
    views,
)
from shared.service import Service

# Its events are registrations (insert if absent) and label summaries (keep the newest revision):
# neither depends on the order they are applied in, so several are applied at once.
service = Service(
    "catalog", migrations=Path(__file__).parent / "migrations", buckets=("media", "thumbs"), events_concurrency=4
)
service.context(search.search_connections)
service.on_startup(apikeys.bootstrap_admin_key)
service.on_startup(embeddings.find_indexes)

service.answer(
    [
        *apikeys.ANSWERS,
        *projects.ANSWERS,
        *access.ANSWERS,
        *datasets.ANSWERS,
        *samples.ANSWERS,
        *media.ANSWERS,
        *search.ANSWERS,
        *views.ANSWERS,
        *embeddings.ANSWERS,
        *schema.ANSWERS,
    ]
)
# Read models and registrations fed by other services' events.
service.on_event(subjects.MEDIA_STORED)(samples.register)
service.on_event(subjects.LABEL_CHANGED)(labels_summary.apply_label_changed)
service.on_event(subjects.LABELSET_DELETED)(labels_summary.apply_labelset_deleted)
