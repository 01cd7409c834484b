"""Loupe's command line and the embedded local stack it runs."""
