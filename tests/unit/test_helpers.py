"""The one way integration tests wait: `eventually`."""

from __future__ import annotations

import pytest

from tests.helpers import eventually


async def test_eventually_retries_until_the_probe_passes_and_returns_its_value() -> None:
    answers = iter([None, [], "ready"])
    failures = iter([AssertionError("not yet")])

    async def probe() -> str | None:
        for failure in failures:
            raise failure
        return next(answers)

    assert await eventually(probe, timeout=5, interval=0) == "ready"


async def test_eventually_fails_with_what_the_probe_last_saw() -> None:
    seen = iter(range(1000))

    async def probe() -> bool:
        count = next(seen)
        assert count < 0, f"saw {count}"
        return True

    with pytest.raises(AssertionError, match=r"not within 0.05 s; last seen: saw \d+") as failure:
        await eventually(probe, timeout=0.05, interval=0.01)
    assert isinstance(failure.value.__cause__, AssertionError)

    async def falsy() -> list[int]:
        return []

    with pytest.raises(AssertionError, match=r"last seen: the probe returned \[\]"):
        await eventually(falsy, timeout=0.02, interval=0.01)


async def test_eventually_lets_other_errors_through_at_once() -> None:
    async def broken() -> bool:
        raise KeyError("state")

    with pytest.raises(KeyError):
        await eventually(broken, timeout=5)
