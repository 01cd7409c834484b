"""Gateway: the one REST front door — auth, validation, problems, OpenAPI — onto bus commands."""
