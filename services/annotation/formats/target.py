"""What every export format writer is given: one release, where to write, and how."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from proto.annotation import LabelObject
from proto.releases import ReleaseHeader, ReleaseSample
from services.annotation.formats.stats import ExportStats

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class ExportTarget:
    """`image_url` says where a sample's image can be fetched (None: nowhere); `read_image` reads the original
    Loupe stores, a chunk at a time (None: it stores none); `task` is COCO's and YOLO's choice between boxes and
    masks."""

    header: ReleaseHeader
    out_dir: Path
    labelset: str
    task: Literal["detection", "segmentation"]
    image_url: Callable[[ReleaseSample], str | None]
    read_image: Callable[[ReleaseSample], Iterable[bytes] | None] = lambda sample: None

    def objects(
        self, sample: ReleaseSample, classes: Mapping[str, T], stats: ExportStats
    ) -> Iterator[tuple[LabelObject, T]]:
        """The sample's objects in the exported labelset, each with what the format calls its class (from
        `classes`, by class id); an object of a class the release's schema lacks is counted as skipped."""
        label = sample.labels.get(self.labelset)
        for obj in label.objects if label else ():
            named = classes.get(obj.class_id)
            if named is None:
                stats.skip("class not in the release's schema")
                continue
            yield obj, named
