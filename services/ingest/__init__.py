"""Ingest: takes media in (upload, URL, bucket import, bus), validates, dedupes, thumbnails."""
