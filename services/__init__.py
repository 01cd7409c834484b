"""The six Loupe services; each runs as `python -m services.<name>`."""
