"""Hostile input at the gateway: whatever a client sends, the answer is a 4xx problem that names the
field (never a 500), and a client that stops sending gets 408 instead of holding a request open."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp
import pytest
from yarl import URL

from loupe.stack import Stack
from tests.helpers import PROBLEM, create, dataset, problem


class RawReply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


async def raw_request(stack: Stack, head: str | bytes, body: bytes = b"", *, wait_s: float = 30.0) -> RawReply:
    """Send bytes as they are (a lying Content-Length, a URL over every limit) and read one reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.ports.gateway)
    try:
        writer.write((head.encode("latin-1") if isinstance(head, str) else head) + body)
        await writer.drain()
        raw_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait_s)
        status_line, *lines = raw_head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in lines if line)}
        length = int(headers.get("content-length", "0"))
        return RawReply(int(status_line.split()[1]), headers, await reader.readexactly(length))
    finally:
        writer.close()


def head(stack: Stack, method: str, target: str, *extra: str) -> str:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{stack.ports.gateway}",
             f"Authorization: Bearer {stack.admin_key}", *extra]
    return "\r\n".join(lines) + "\r\n\r\n"


def raw_problem(reply: RawReply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"].startswith(PROBLEM), reply.headers
    body = json.loads(reply.body)
    assert body["status"] == status and body["detail"] and body["request_id"]
    return body


def new_sample(**extra: Any) -> dict[str, Any]:
    return {"content_hash": uuid.uuid4().hex * 2, "name": "a.jpg", "width": 10, "height": 10, **extra}


# -- NUL characters and lone surrogates -----------------------------------------------------------

async def test_nul_in_any_json_string_is_422_naming_it(api: aiohttp.ClientSession, unique: str) -> None:
    project = await create(api, f"hostile {unique}")
    base = f"/v1/projects/{project['id']}"
    samples = f"{base}/datasets/{(await dataset(api, project['id']))['id']}/samples"
    for url, body, path in (
            ("/v1/projects", {"name": "nul\x00"}, "$.name"),
            (samples, {"items": [new_sample(metadata={"cam\x00": 1})]}, "$.items[0].metadata[...]"),
            (samples, {"items": [new_sample(metadata={"camera": ["left", "ri\x00ght"]})]},
             "$.items[0].metadata.camera[1]"),
            (f"{base}/samples/search", {"name_contains": "\x00"}, "$.name_contains"),
            (f"{base}/samples/search", {"tags_any": ["night\x00"]}, "$.tags_any[0]")):
        async with api.post(url, json=body) as response:
            found = await problem(response, 422)
        assert (found["code"], found["path"]) == ("invalid", path), found
        assert "NUL" in found["detail"]


async def test_an_escaped_backslash_before_u0000_is_just_text(api: aiohttp.ClientSession, unique: str) -> None:
    name = f"literally \\u0000 {unique}"
    assert (await create(api, name))["name"] == name


async def test_a_lone_surrogate_is_422_naming_it(api: aiohttp.ClientSession, unique: str) -> None:
    project = await create(api, f"surrogate {unique}")
    samples = f"/v1/projects/{project['id']}/datasets/{(await dataset(api, project['id']))['id']}/samples"
    for url, body, path in (("/v1/projects", b'{"name": "half \\ud800 of a pair"}', "$.name"),
                            (samples, (b'{"items": [{"name": "a.jpg", "width": 1, "height": 1, '
                                       b'"metadata": {"k": "\\udc00"}}]}'), "$.items[0].metadata.k")):
        async with api.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            found = await problem(response, 422)
        assert (found["code"], found["path"]) == ("invalid", path), found


async def test_nul_in_query_and_path_parameters_is_422_naming_them(api: aiohttp.ClientSession, unique: str) -> None:
    project = await create(api, f"params {unique}")
    base = f"/v1/projects/{project['id']}"
    async with api.get(f"{base}/samples", params={"name_contains": "a\x00"}) as response:
        assert (await problem(response, 422))["path"] == "query.name_contains"
    async with api.get("/v1/projects", params={"\x00": "1"}) as response:
        assert (await problem(response, 422))["path"] == "query[...]"
    for method, target, path in (("GET", "/v1/projects/%00", "project_id"),
                                 ("GET", f"{base}/labelsets/ground%00truth", "labelset"),
                                 ("GET", "/v1/projects/%00/events", "project_id"),
                                 ("POST", f"{base}/datasets/%00/files", "dataset_id")):
        async with api.request(method, URL(target, encoded=True)) as response:
            found = await problem(response, 422)
        assert (found["path"], "NUL" in found["detail"]) == (path, True), found


def multipart(disposition: bytes) -> bytes:
    return (b"--B\r\nContent-Disposition: form-data; name=\"file\"; " + disposition +
            b"\r\nContent-Type: image/jpeg\r\n\r\nnot really a jpeg\r\n--B--\r\n")


async def test_hostile_multipart_uploads_are_4xx(api: aiohttp.ClientSession, unique: str) -> None:
    project = await create(api, f"multipart {unique}")
    files = f"/v1/projects/{project['id']}/datasets/{(await dataset(api, project['id']))['id']}/files"
    form = {"Content-Type": "multipart/form-data; boundary=B"}
    for disposition in (b"filename*=UTF-8''a%00.jpg", b'filename="a\xff.jpg"'):
        async with api.post(files, data=multipart(disposition), headers=form) as response:
            assert (await problem(response, 422))["path"] == "files[0]"
    async with api.post(files, data=multipart(b'filename="a.jpg"'),
                        headers={"Content-Type": "multipart/form-data"}) as response:
        assert (await problem(response, 400))["path"] == "body"
    async with api.post(files, data=b"--B\r\ngarbage without an end", headers=form) as response:
        assert (await problem(response, 400))["path"] == "body"


async def test_a_header_that_is_not_utf8_is_400_naming_it(stack: Stack) -> None:
    lines = [b"GET /v1/projects HTTP/1.1", b"Host: 127.0.0.1", b"Authorization: Bearer k\xffy"]
    reply = await raw_request(stack, b"\r\n".join(lines) + b"\r\n\r\n")
    assert raw_problem(reply, 400)["path"] == "header.Authorization"


async def test_a_last_event_id_that_is_no_number_starts_from_now(stack: Stack, api: aiohttp.ClientSession,
                                                                 unique: str) -> None:
    project = await create(api, f"sse {unique}")
    async with api.get(f"/v1/projects/{project['id']}/events", headers={"Last-Event-ID": "²"}) as response:
        assert response.status == 200, await response.text()


# -- nesting ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [500, 900, 990, 3000, 100_000])
async def test_deeply_nested_json_is_refused_not_500(api: aiohttp.ClientSession, unique: str, depth: int) -> None:
    project = await create(api, f"deep {depth} {unique}")
    nested = b"[" * depth + b"1" + b"]" * depth
    samples = f"/v1/projects/{project['id']}/datasets/{(await dataset(api, project['id']))['id']}/samples"
    # Metadata is free-form JSON, decoded to the bottom; an unknown field is refused before that.
    for url, body, decoded in (
            (f"/v1/projects/{project['id']}/samples/search", b'{"metadata": {"k": ' + nested + b"}}", True),
            (samples, b'{"items": [{"name": "a.jpg", "width": 1, "height": 1, "media_url": '
                      b'"https://example.com/a.jpg", "metadata": {"k": ' + nested + b"}}]}", True),
            ("/v1/projects", b'{"name": "deep", "unknown": ' + nested + b"}", False)):
        async with api.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            assert response.status < 500, (url, await response.text())
            if decoded and depth >= 3000:
                found = await problem(response, 400)
                assert found["code"] == "malformed" and "nest" in found["detail"]


# -- ids in queries and bodies ----------------------------------------------------------------------

async def test_ids_in_queries_must_be_uuids(api: aiohttp.ClientSession, unique: str) -> None:
    project = await create(api, f"ids {unique}")
    base = f"/v1/projects/{project['id']}"
    for listing in ("audit", "issues", "labelsets/ground-truth/objects"):
        for bad in ("", "nope", "0" * 36):
            async with api.get(f"{base}/{listing}", params={"sample_id": bad}) as response:
                found = await problem(response, 422)
            assert (found["code"], found["path"]) == ("invalid", "query.sample_id"), found
    async with api.post(f"{base}/queues/label/next", json={"dataset_id": ""}) as response:
        assert (await problem(response, 422))["path"] == "$.dataset_id"
    async with api.get(f"{base}/imports", params={"dataset_id": ""}) as response:
        assert (await problem(response, 422))["path"] == "query.dataset_id"
    async with api.get("/openapi.json") as response:
        document = await response.json()
    for path, operation in (("/v1/projects/{project_id}/audit", "get"), ("/v1/projects/{project_id}/issues", "get")):
        [parameter] = [p for p in document["paths"][path][operation]["parameters"] if p["name"] == "sample_id"]
        assert parameter["schema"]["anyOf"][0]["format"] == "uuid", parameter


# -- bodies that never arrive, or are too large to take ---------------------------------------------

async def test_a_body_that_never_arrives_is_408_within_the_request_timeout(stack: Stack, unique: str) -> None:
    project = await create_raw(stack, f"stall {unique}")
    files = f"/v1/projects/{project}/datasets/{uuid.uuid4()}/files"
    started = time.monotonic()
    json_reply, upload_reply = await asyncio.gather(
        raw_request(stack, head(stack, "POST", "/v1/projects", "Content-Type: application/json",
                                "Content-Length: 100"), b'{"name": '),
        raw_request(stack, head(stack, "POST", files, "Content-Type: multipart/form-data; boundary=B",
                                "Content-Length: 100000"), b"--B\r\nContent-Disposition: form-data; name=\"file\"; "
                                                           b"filename=\"a.jpg\"\r\n\r\nabc"))
    assert time.monotonic() - started < stack.settings.request_timeout_s + 10
    for reply in (json_reply, upload_reply):
        assert raw_problem(reply, 408)["code"] == "timeout"


async def create_raw(stack: Stack, name: str) -> str:
    async with aiohttp.ClientSession(stack.gateway_url,
                                     headers={"Authorization": f"Bearer {stack.admin_key}"}) as session:
        return (await create(session, name))["id"]


async def test_a_declared_body_over_the_limit_is_413_without_sending_it(stack: Stack, unique: str) -> None:
    project = await create_raw(stack, f"declared {unique}")
    files = f"/v1/projects/{project}/datasets/{uuid.uuid4()}/files"
    for target, content_type, limit in (
            ("/v1/projects", "application/json", stack.settings.max_body_bytes),
            (files, "multipart/form-data; boundary=B", stack.settings.max_upload_bytes)):
        reply = await raw_request(stack, head(stack, "POST", target, f"Content-Type: {content_type}",
                                              f"Content-Length: {limit + 1}"), wait_s=5)
        found = raw_problem(reply, 413)
        assert (found["code"], found["details"]["limit"]) == ("too_large", limit)


# -- request lines and headers ----------------------------------------------------------------------

async def test_a_url_over_the_limit_is_414_and_a_header_over_it_431(stack: Stack) -> None:
    reply = await raw_request(stack, head(stack, "GET", "/v1/projects?name=" + "a" * 20_000))
    assert raw_problem(reply, 414)["code"] == "too_large"
    reply = await raw_request(stack, head(stack, "GET", "/v1/projects", "X-Padding: " + "a" * 20_000))
    found = raw_problem(reply, 431)
    assert (found["code"], found["path"]) == ("too_large", "header.X-Padding")


async def test_a_method_the_path_lacks_is_405_with_allow(api: aiohttp.ClientSession) -> None:
    for method in ("TRACE", "PUT"):
        async with api.request(method, "/v1/projects") as response:
            found = await problem(response, 405)
            allowed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert {"GET", "POST"} <= allowed and method in found["detail"]
