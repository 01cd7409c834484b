"""The Hasty dialect, served by the gateway under `/hasty` (the Hasty SDK's `base_url`)."""
