"""The `images` export writes each stored original into one zip, by dataset folder, streaming its chunks."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

from proto.releases import (
    NATIVE_FORMAT_VERSION,
    ReleaseDataset,
    ReleaseHeader,
    ReleaseInfo,
    ReleaseProject,
    ReleaseSample,
)
from proto.schema import LabelSchema
from services.annotation.formats import images
from services.annotation.formats.target import ExportTarget


def release_header(datasets: list[ReleaseDataset]) -> ReleaseHeader:
    return ReleaseHeader(
        format=NATIVE_FORMAT_VERSION, project=ReleaseProject(id="p1", name="streets", task_type="vector"),
        release=ReleaseInfo(id="r1", name="v1", description="", created_at=datetime(2026, 1, 1, tzinfo=UTC)),
        label_schema=LabelSchema(version=1, label_classes=[], attributes=[], tag_groups=[], keypoint_schemas=[]),
        labelsets=["ground-truth"], datasets=datasets, samples=4, objects=0)


def sample(index: int, name: str, dataset_id: str, content_hash: str | None = "h") -> ReleaseSample:
    return ReleaseSample(id=f"s{index}", dataset_id=dataset_id, name=name, width=4, height=3,
                         content_hash=content_hash and f"{content_hash}{index}",
                         media_url=None if content_hash else "https://example.com/x.jpg")


def test_every_stored_original_is_in_the_zip_under_its_dataset(tmp_path: Path) -> None:
    header = release_header([ReleaseDataset(id="d1", name="train"), ReleaseDataset(id="d2", name="val/2026")])
    samples = [sample(0, "a.jpg", "d1"), sample(1, "dir/a.jpg", "d1"), sample(2, "b.png", "d2"),
               sample(3, "outside.jpg", "d1", content_hash=None)]
    read: list[str] = []

    def read_image(s: ReleaseSample) -> list[bytes] | None:
        if s.content_hash is None:
            return None
        read.append(s.id)
        return [s.id.encode(), b"-", s.name.encode()]  # chunks, as S3 streams them

    target = ExportTarget(header=header, out_dir=tmp_path, labelset="ground-truth", task="detection",
                          image_url=lambda s: None, read_image=read_image)
    stats = images.export(target, samples)
    assert stats.samples == 3 and read == ["s0", "s1", "s2"]
    with zipfile.ZipFile(tmp_path / images.ARCHIVE) as zipped:
        assert {info.filename: zipped.read(info) for info in zipped.infolist()} == {
            "train/a.jpg": b"s0-a.jpg", "train/a_2.jpg": b"s1-dir/a.jpg", "val_2026/b.png": b"s2-b.png"}
        assert {info.compress_type for info in zipped.infolist()} == {zipfile.ZIP_STORED}
