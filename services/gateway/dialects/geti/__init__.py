"""The Geti Tune dialect: Geti Tune's REST API (`/api/...`) over Loupe's native services."""
