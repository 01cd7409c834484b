"""Why a file cannot become a sample: the one error type every step of ingest records for a file (a fetch
fails with shared/fetch.py's FetchError, which `pipeline.prepare` turns into one, code and message kept)."""

from __future__ import annotations


class FileRejected(Exception):
    """`code` is a short reason (`corrupt`, `blocked_address`, ...), `message` says what is wrong and what
    to do. It is recorded on the file's item of its run, and never retried."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"
