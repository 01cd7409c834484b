"""The compat suites run the real SDKs (tests/compat/sdk.py) against the session's local stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compat.sdk import sdk_python as make_sdk_python


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    return make_sdk_python()
