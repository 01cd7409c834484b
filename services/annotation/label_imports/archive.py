"""The uploaded file of a label import: downloaded, unzipped without letting a member escape the scratch
directory, its annotations located and parsed into `ImportedImage`s."""

from __future__ import annotations

import asyncio
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import asyncpg
import msgspec

from services.annotation.formats import coco, native, voc, yolo
from services.annotation.formats.imported import ImportedImage
from services.annotation.label_imports.records import upload_key
from shared.errors import invalid
from shared.service import Runtime

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MAX_EXTRACTED_BYTES = 4 << 30
Sizes = Callable[[str], tuple[int, int] | None]


class Upload(msgspec.Struct, frozen=True):
    annotations: Path  # the annotation file (COCO, native) or the dataset's directory (YOLO, VOC)
    root: Path  # where the zip was extracted
    images: list[str]  # the zip's images by their path in it; below `root` when extracted with them


async def fetch_upload(rt: Runtime, row: asyncpg.Record, scratch: Path, *, with_images: bool) -> Upload:
    """The uploaded file, extracted below `scratch`: with its images to hand them to ingest, else the
    annotations only (the labels are written from what ingest made of the images, not from their bytes)."""
    file = scratch / "upload"
    await rt.storage.get_file("releases", upload_key(row), file)
    if not zipfile.is_zipfile(file):
        if row["format"] in ("yolo", "voc"):
            raise invalid(
                f"a {row['format'].upper()} import is a zip of the dataset's directory; the upload is not a zip",
                file="upload",
                path="upload",
            )
        named = file.rename(scratch / ("release.jsonl" if row["format"] == "native" else coco.FILE_NAME))
        return Upload(annotations=named, root=scratch, images=[])
    root = scratch / "files"
    images = await asyncio.to_thread(extract, file, root, with_images)
    return Upload(annotations=locate(row["format"], root), root=root, images=images)


def extract(archive: Path, root: Path, with_images: bool) -> list[str]:
    """Extract the zip below `root` (its images only `with_images`), refusing members that would land
    outside it and archives that unpack to more than MAX_EXTRACTED_BYTES; the paths of its images.
    macOS's resource forks are left out."""
    images = set()
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir() and not _macos_litter(m.filename)]
            if sum(m.file_size for m in members) > MAX_EXTRACTED_BYTES:
                raise invalid(
                    f"the zip unpacks to more than {MAX_EXTRACTED_BYTES >> 30} GiB; split the import",
                    file="upload",
                    path="upload",
                )
            for member in members:
                name = member.filename.replace("\\", "/")
                parts = PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts or ":" in parts[0]:
                    raise invalid(
                        f"the zip member {member.filename!r} would be written outside the archive's "
                        "directory; zip relative paths only",
                        file=member.filename,
                        path="upload",
                    )
                if PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS:
                    images.add("/".join(parts))
                    if not with_images:
                        continue
                target = root.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise invalid(f"the upload is not a readable zip ({exc})", file="upload", path="upload") from None
    return sorted(images)


def _macos_litter(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return "__MACOSX" in parts or parts[-1].startswith("._")


def locate(fmt: str, root: Path) -> Path:
    """The annotation file (COCO, native) or the dataset directory (VOC, YOLO) in the extracted zip."""
    if fmt == "coco":
        found, what = sorted(root.rglob("*.json")), "one COCO annotation file (*.json)"
    elif fmt == "native":
        found, what = sorted(root.rglob("*.jsonl")), "one native release file (*.jsonl)"
    elif fmt == "voc":
        found, what = _parents(root, "Annotations"), "one `Annotations` directory"
    else:
        found, what = _parents(root, "data.yaml") or _parents(root, yolo.LABELS), "one YOLO dataset (`data.yaml`)"
    if len(found) != 1:
        listed = ", ".join(p.relative_to(root).as_posix() or "." for p in found[:5])
        raise invalid(
            f"the zip must hold {what}; it holds {len(found)}{': ' + listed if found else ''}",
            file="upload",
            path="upload",
        )
    return found[0]


def _parents(root: Path, name: str) -> list[Path]:
    return sorted({p.parent for p in root.rglob(name)})


def parse(fmt: str, labelset: str, annotations: Path, sizes: Sizes) -> list[ImportedImage]:
    if fmt == "coco":
        return list(coco.parse(annotations))
    if fmt == "voc":
        return list(voc.parse(annotations))
    if fmt == "native":
        return list(native.parse(annotations, labelset=labelset))
    return list(yolo.parse(annotations, sizes))


def no_sizes(name: str) -> None:
    """YOLO's sizes before the images are known: the parse checks the dataset's layout only."""
    return None
