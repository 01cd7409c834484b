"""Catalog: the system of record for organisations, API keys and projects."""
