"""Sieve's tagging API (`/sieve/v1/...`) as a thin translation onto Loupe's native commands."""
