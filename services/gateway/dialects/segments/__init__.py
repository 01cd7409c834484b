"""The Segments.ai dialect, served at the root of a listener of its own (`LOUPE_SEGMENTS_PORT`)."""
