"""Where each kind of object lives in Loupe's storage: the one definition of every key, by bucket.

Several services reach the same objects (ingest stores originals and thumbnails, the catalog and
annotation sign URLs for them; annotation stages label-import files, ingest reads them), so a key is
built here and nowhere else.

- `media`, `thumbs`: an original and its thumbnail, both under the original's SHA-256 (hex), so identical
  bytes are stored once, whoever sends them.
- `staging`: an upload slot's bytes, under its ingest run and index, until the run processes them.
- `releases`: everything of a project under `<project id>/`, so deleting a project deletes its files:
  release snapshots, export files, and label imports' uploads and staged images.
"""

from __future__ import annotations

import uuid

Id = uuid.UUID | str


def original(sha256: str) -> str:
    """An image's original bytes, in the media bucket."""
    return sha256


def thumbnail(sha256: str) -> str:
    """An image's thumbnail, in the thumbs bucket."""
    return sha256


def upload_slot(run_id: Id, index: int) -> str:
    """The bytes PUT to an upload slot of an ingest run, in the staging bucket."""
    return f"{run_id}/{index}"


def project_files(project_id: Id) -> str:
    """The prefix of all of a project's files in the releases bucket."""
    return f"{project_id}/"


def release_snapshot(project_id: Id, release_id: Id) -> str:
    """A release's snapshot (JSON lines), in the releases bucket."""
    return f"{project_files(project_id)}releases/{release_id}/release.jsonl"


def export_file(project_id: Id, export_id: Id, name: str) -> str:
    """An export's file, named as its format names it, in the releases bucket."""
    return f"{project_files(project_id)}exports/{export_id}/{name}"


def label_imports(project_id: Id) -> str:
    """The prefix of all of a project's label-import files in the releases bucket: the only place ingest
    reads files a Loupe service staged."""
    return f"{project_files(project_id)}imports/"


def label_import_upload(project_id: Id, import_id: Id) -> str:
    """The archive a client uploads for a label import, in the releases bucket."""
    return f"{label_imports(project_id)}{import_id}/upload"


def label_import_images(project_id: Id, import_id: Id) -> str:
    """The prefix a label import stages its archive's images under, in the releases bucket."""
    return f"{label_imports(project_id)}{import_id}/images/"


def training_checkpoint(run_id: Id) -> str:
    """A training run's last checkpoint, in the models bucket (never loaded by Triton: no model of that name)."""
    return f"_checkpoints/{run_id}/last.pt"


def model_weights_folder(triton_model: str) -> str:
    """The prefix of all of a model's trained weights, in the models bucket."""
    return f"_weights/{triton_model}/"


def model_weights(triton_model: str, version: int) -> str:
    """A model version's trained torch weights (its state dict), in the models bucket, from which later runs
    may start (never loaded by Triton: no model of that name)."""
    return f"{model_weights_folder(triton_model)}{version}.pt"
