"""The `images` export: a zip of the release's original images, as Loupe stored them, with no labels.

Each image is `<dataset name>/<name>` in the zip: its name's last path segment, made unique within the dataset
folder as YOLO's stems are (`_2`, `_3`... in sample order), with the name's extension. Originals are copied into
the zip a chunk at a time from S3, stored uncompressed (images are compressed already), so neither memory nor
the scratch disk holds more than the zip itself. A sample whose image Loupe does not store (registered by an
external URL) is left out of the zip and of the count.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import PurePosixPath

from proto.releases import ReleaseSample
from services.annotation.formats.stats import ExportStats
from services.annotation.formats.target import ExportTarget
from services.annotation.formats.yolo import Stems

ARCHIVE = "images.zip"


def folder(name: str) -> str:
    """A dataset name as one path segment of the zip."""
    return name.replace("/", "_").replace("\\", "_").strip(". ") or "dataset"


def export(target: ExportTarget, samples: Iterable[ReleaseSample]) -> ExportStats:
    datasets = {dataset.id: folder(dataset.name) for dataset in target.header.datasets}
    stems: dict[str, Stems] = {}
    stats = ExportStats()
    with zipfile.ZipFile(target.out_dir / ARCHIVE, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for sample in samples:
            chunks = target.read_image(sample)
            if chunks is None:
                continue
            place = datasets.get(sample.dataset_id, sample.dataset_id)
            stem = stems.setdefault(place, Stems())(sample.name)
            suffix = PurePosixPath(sample.name.replace("\\", "/")).suffix
            with archive.open(f"{place}/{stem}{suffix}", "w", force_zip64=True) as entry:
                for chunk in chunks:
                    entry.write(chunk)
            stats.samples += 1
    return stats
