"""What an export wrote: the counts the export job reports back."""

from __future__ import annotations

import msgspec


class ExportStats(msgspec.Struct):
    samples: int = 0
    objects: int = 0
    skipped: int = 0  # objects the format cannot express
    skipped_reasons: dict[str, int] = {}

    def skip(self, reason: str) -> None:
        """Count one object left out, and why."""
        self.skipped += 1
        self.skipped_reasons[reason] = self.skipped_reasons.get(reason, 0) + 1
