"""Annotation: labelsets, labels and their objects, review, QA findings, releases and exports."""
