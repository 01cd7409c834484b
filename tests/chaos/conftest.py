"""The chaos suite runs only when asked for: `make test-chaos` (CHAOS_PROFILE=full) or `make test-chaos CHAOS=quick`.
It starts a stack of its own and kills its processes for minutes, which `make test` has no time for."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("CHAOS_PROFILE") else ["test_*.py"]
