"""The web console: static files the gateway serves at `/`, talking only to the public REST API."""
