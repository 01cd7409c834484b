"""Loupe's native release format, `release.jsonl`: writer (an export of a filtered release) and
streaming reader. Lines are msgspec-encoded `ReleaseHeader` then `ReleaseSample`s, exactly as
proto/releases.py types them, so a write and a read give back equal structs.

The header counts the samples and objects of the file, known only once every sample is written: the
samples go to a scratch file first, then the header and the samples are joined into the export.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import msgspec

from proto.releases import NATIVE_FORMAT_VERSION, ReleaseHeader, ReleaseSample
from services.annotation.formats.stats import ExportStats
from services.annotation.formats.target import ExportTarget
from shared.errors import invalid

FILE_NAME = "release.jsonl"
_FLUSH_BYTES = 1 << 20
T = TypeVar("T")


def export(target: ExportTarget, samples: Iterable[ReleaseSample]) -> ExportStats:
    """Write `release.jsonl` with every labelset of the samples. `labelset`, `task` and `image_url`
    do not apply: the native format keeps everything and names originals by content hash."""
    encoder = msgspec.json.Encoder()
    stats = ExportStats()
    scratch = target.out_dir / f".{FILE_NAME}.samples"
    with scratch.open("wb") as file:
        buffer = bytearray()
        for sample in samples:
            encoder.encode_into(sample, buffer, -1)
            buffer += b"\n"
            stats.samples += 1
            stats.objects += sum(len(label.objects) for label in sample.labels.values())
            if len(buffer) >= _FLUSH_BYTES:
                file.write(buffer)
                buffer.clear()
        file.write(buffer)
    counted = msgspec.structs.replace(target.header, samples=stats.samples, objects=stats.objects)
    with (target.out_dir / FILE_NAME).open("wb") as file, scratch.open("rb") as sample_lines:
        file.write(encoder.encode(counted) + b"\n")
        shutil.copyfileobj(sample_lines, file, _FLUSH_BYTES)
    scratch.unlink()
    return stats


def read(path: Path) -> tuple[ReleaseHeader, Iterator[ReleaseSample]]:
    """The header, read now, and the samples, read line by line as the iterator is consumed."""
    with path.open("rb") as file:
        header_line = file.readline()
    header = _decode(msgspec.json.Decoder(ReleaseHeader), header_line, 1)
    if header.format != NATIVE_FORMAT_VERSION:
        raise invalid(
            f"line 1: format {header.format!r} is not {NATIVE_FORMAT_VERSION!r}; this reader only "
            "reads native releases of that version",
            path="line 1: $.format",
        )
    return header, _samples(path)


def _samples(path: Path) -> Iterator[ReleaseSample]:
    decoder = msgspec.json.Decoder(ReleaseSample)
    with path.open("rb") as file:
        file.readline()
        for number, line in enumerate(file, start=2):
            if line.strip():
                yield _decode(decoder, line, number)


def _decode(decoder: msgspec.json.Decoder[T], line: bytes, number: int) -> T:
    try:
        return decoder.decode(line)
    except msgspec.ValidationError as error:
        raise invalid(
            f"line {number}: {error}; each line must be a "
            f"{'ReleaseHeader' if number == 1 else 'ReleaseSample'} of proto/releases.py",
            path=f"line {number}",
        ) from error
    except msgspec.DecodeError as error:
        raise invalid(
            f"line {number} is not valid JSON ({error}); the file may be truncated or not a native release",
            path=f"line {number}",
        ) from error
