"""What every export format writer is given: one release, where to write, and how."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from proto.releases import ReleaseHeader, ReleaseSample


@dataclass(frozen=True, kw_only=True)
class ExportTarget:
    """`image_url` says where a sample's image can be fetched (None: nowhere); `task` is COCO's and
    YOLO's choice between boxes and masks."""

    header: ReleaseHeader
    out_dir: Path
    labelset: str
    task: Literal["detection", "segmentation"]
    image_url: Callable[[ReleaseSample], str | None]
