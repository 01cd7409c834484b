"""What the gateway refuses before any handler runs, and how it reads `Last-Event-ID`."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import make_mocked_request

from services.gateway.events import resume_sequence
from services.gateway.problems import MAX_HEADER_BYTES, MAX_URL_BYTES, HttpProblem, check_request, within
from shared.errors import LoupeError


def test_a_plain_request_passes() -> None:
    check_request(make_mocked_request("GET", "/v1/projects/p1/samples?name_contains=a&limit=5",
                                      {"Authorization": "Bearer naïve"}, match_info={"project_id": "p1"}))


@pytest.mark.parametrize(("target", "headers", "status", "path"), [
    ("/v1/projects?q=" + "a" * MAX_URL_BYTES, {}, 414, "url"),
    ("/v1/projects", {"X-Padding": "a" * MAX_HEADER_BYTES}, 431, "header.X-Padding"),
])
def test_a_url_or_header_over_its_limit_is_refused(target: str, headers: dict[str, str], status: int,
                                                   path: str) -> None:
    with pytest.raises(HttpProblem) as caught:
        check_request(make_mocked_request("GET", target, headers))
    assert (caught.value.status, caught.value.code, caught.value.details["path"]) == (status, "too_large", path)


@pytest.mark.parametrize(("target", "match_info", "path"), [
    ("/v1/projects/%00", {"project_id": "\x00"}, "project_id"),
    ("/v1/projects?name_contains=a%00", {}, "query.name_contains"),
    ("/v1/projects?%00=1", {}, "query[...]"),
])
def test_nul_in_a_path_or_query_parameter_is_invalid(target: str, match_info: dict[str, str], path: str) -> None:
    with pytest.raises(LoupeError) as caught:
        check_request(make_mocked_request("GET", target, match_info=match_info))
    assert (caught.value.code, caught.value.details["path"]) == ("invalid", path)


@pytest.mark.parametrize(("header", "start"), [(None, None), ("41", 42), ("²", None), ("-1", None), ("4 1", None),
                                               ("9" * 19, 10**19), ("9" * 20, None)])
def test_last_event_id_resumes_only_after_a_sequence(header: str | None, start: int | None) -> None:
    headers = {} if header is None else {"Last-Event-ID": header}
    assert resume_sequence(make_mocked_request("GET", "/v1/projects/p/events", headers)) == start


async def test_a_body_read_in_time_is_read_in_the_requests_own_task() -> None:
    async def read() -> asyncio.Task[None] | None:
        return asyncio.current_task()

    assert await within(1, read()) is asyncio.current_task()


async def test_a_body_that_does_not_arrive_in_time_is_408_and_its_read_is_cancelled() -> None:
    cancelled = asyncio.Event()

    async def read_forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(HttpProblem) as caught:
        await within(0.01, read_forever())
    assert (caught.value.status, caught.value.code, caught.value.details["limit_s"]) == (408, "timeout", 0.01)
    assert cancelled.is_set()


async def test_a_request_cancelled_while_reading_its_body_stays_cancelled() -> None:
    reading = asyncio.create_task(within(60, asyncio.sleep(60)))
    await asyncio.sleep(0)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
