import asyncio
import ipaddress
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from shared.fetch import (AddressGuard, FetchedFile, FetchError, FetchPolicy, GuardedResolver, fetch_url, guarded_http,
                          make_session, own_storage, policy_from, resolve_own_storage)
from shared.settings import Settings

CAT = b"\xff\xd8\xff not really a cat"


@asynccontextmanager
async def serve(routes: list[web.RouteDef], hits: Counter[str]) -> AsyncIterator[int]:
    """An HTTP server on 127.0.0.1 and a free port, counting requests by path in `hits`."""

    @web.middleware
    async def count(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        hits[request.path] += 1
        return await handler(request)

    app = web.Application(middlewares=[count])
    app.add_routes(routes)
    runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def cat(_: web.Request) -> web.Response:
    return web.Response(body=CAT, content_type="image/jpeg")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["to"])


async def loop(_: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def big(_: web.Request) -> web.Response:
    return web.Response(body=b"x" * 2000)


async def chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(4):
        await response.write(b"x" * 500)
    await response.write_eof()
    return response


async def slow(_: web.Request) -> web.Response:
    await asyncio.sleep(10)
    return web.Response(body=CAT)


ROUTES = [web.get("/photos/{name}", cat), web.get("/redirect", redirect), web.get("/loop", loop),
          web.get("/big", big), web.get("/chunked", chunked), web.get("/slow", slow)]


@pytest.fixture
def hits() -> Counter[str]:
    return Counter()


@pytest.fixture
async def port(hits: Counter[str]) -> AsyncIterator[int]:
    async with serve(ROUTES, hits) as number:
        yield number


@pytest.fixture
async def other_port(hits: Counter[str]) -> AsyncIterator[int]:
    """A second local server that no policy allows: nothing may ever reach it."""
    async with serve([web.get("/", cat)], hits) as number:
        yield number
    assert hits["/"] == 0


def policy(port: int, **overrides: Any) -> FetchPolicy:
    rules = FetchPolicy(allow=(f"127.0.0.1:{port}",), hosts={"images.example.com": "127.0.0.1"}, connect_timeout_s=0.5)
    return msgspec.structs.replace(rules, **overrides)


async def fetch(url: str, rules: FetchPolicy) -> FetchedFile:
    async with make_session(rules) as session:
        return await fetch_url(session, url, rules)


async def error(url: str, rules: FetchPolicy) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetch(url, rules)
    assert caught.value.message
    return caught.value


async def test_plain_fetch(port: int) -> None:
    url = f"http://127.0.0.1:{port}/photos/cat%20one.jpg?size=large"
    got = await fetch(url, policy(port))
    assert got == FetchedFile(url=url, data=CAT, content_type="image/jpeg", filename="cat one.jpg")


async def test_redirects_are_followed_on_allowed_hosts(port: int) -> None:
    target = f"http://images.example.com:{port}/photos/b.jpg"
    got = await fetch(f"http://images.example.com:{port}/redirect?to=/photos/a.jpg", policy(port))
    assert (got.url, got.data, got.filename) == (f"http://images.example.com:{port}/photos/a.jpg", CAT, "redirect")
    assert (await fetch(f"http://127.0.0.1:{port}/redirect?to={target}", policy(port))).url == target


async def test_loopback_on_a_port_not_allowed_is_blocked(port: int, other_port: int) -> None:
    failure = await error(f"http://127.0.0.1:{other_port}/", policy(port))
    assert failure.code == "blocked_address" and "127.0.0.1 is loopback" in failure.message


async def test_cloud_metadata_is_blocked_without_connecting(port: int) -> None:
    started = time.perf_counter()
    failure = await error("http://169.254.169.254/latest/meta-data", policy(port))
    assert failure.code == "blocked_address" and "169.254.169.254 is link-local (cloud metadata)" in failure.message
    assert time.perf_counter() - started < 0.4  # refused up front, not a connect that timed out


@pytest.mark.parametrize("url", ["http://[::ffff:127.0.0.1]/", "http://[fd00:ec2::254]/", "http://0.0.0.0/",
                                 "http://[::1]/", "http://100.64.0.1/", "http://[64:ff9b::a9fe:a9fe]/"])
async def test_private_literals_are_blocked(url: str, port: int) -> None:
    assert (await error(url, policy(port))).code == "blocked_address"


async def test_legacy_ipv4_forms_never_connect(port: int) -> None:
    for url in (f"http://127.1:{port}/photos/a.jpg", f"http://2130706433:{port}/photos/a.jpg"):
        assert (await error(url, policy(port))).code in ("bad_url", "blocked_address")


async def test_public_looking_host_redirecting_to_another_local_port_is_blocked(port: int, other_port: int) -> None:
    failure = await error(f"http://images.example.com:{port}/redirect?to=http://127.0.0.1:{other_port}/",
                          policy(port))
    assert failure.code == "blocked_address"


@pytest.mark.parametrize(("target", "words"), [("http://169.254.169.254/", "cloud metadata"),
                                               ("http://10.0.0.1/", "private (RFC 1918)")])
async def test_redirect_to_private_address_is_blocked(target: str, words: str, port: int) -> None:
    failure = await error(f"http://images.example.com:{port}/redirect?to={target}", policy(port))
    assert failure.code == "blocked_address" and words in failure.message


async def test_redirect_to_other_scheme_is_refused(port: int) -> None:
    failure = await error(f"http://127.0.0.1:{port}/redirect?to=file:///etc/passwd", policy(port))
    assert failure.code == "bad_url" and "redirects to 'file:///etc/passwd'" in failure.message


async def test_redirect_loop(port: int, hits: Counter[str]) -> None:
    assert (await error(f"http://127.0.0.1:{port}/loop", policy(port, max_redirects=3))).code == "too_many_redirects"
    assert hits["/loop"] == 4


async def test_body_over_the_limit(port: int) -> None:
    declared = await error(f"http://127.0.0.1:{port}/big", policy(port, max_bytes=1000))
    assert declared.code == "too_large" and "2,000 bytes" in declared.message
    assert (await error(f"http://127.0.0.1:{port}/chunked", policy(port, max_bytes=1000))).code == "too_large"
    assert len((await fetch(f"http://127.0.0.1:{port}/chunked", policy(port, max_bytes=2000))).data) == 2000


async def test_slow_server_times_out(port: int) -> None:
    started = time.perf_counter()
    assert (await error(f"http://127.0.0.1:{port}/slow", policy(port, timeout_s=0.3))).code == "timeout"
    assert time.perf_counter() - started < 2


async def test_http_errors_name_the_status(port: int) -> None:
    failure = await error(f"http://127.0.0.1:{port}/nothing-here", policy(port))
    assert failure.code == "http_error" and "404" in failure.message


@pytest.mark.parametrize("url", ["ftp://images.example.com/a.jpg", "http://user:secret@images.example.com/a.jpg",
                                 "images.example.com/a.jpg", "http://[::1/", "https:///a.jpg"])
async def test_bad_urls(url: str, port: int) -> None:
    assert (await error(url, policy(port))).code == "bad_url"


async def test_connection_refused(port: int) -> None:
    with socket.socket() as unused:  # bound but not listening: connecting is refused
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]
        failure = await error(f"http://127.0.0.1:{closed}/", policy(closed))
    assert failure.code == "connection_failed"


async def test_only_sessions_from_make_session_are_accepted(port: int) -> None:
    async with aiohttp.ClientSession() as plain, make_session(policy(port)) as guarded:
        with pytest.raises(TypeError):
            await fetch_url(plain, f"http://127.0.0.1:{port}/photos/a.jpg", policy(port))
        with pytest.raises(ValueError):
            await fetch_url(guarded, f"http://127.0.0.1:{port}/photos/a.jpg", policy(port + 1))


def fake_dns(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    async def getaddrinfo(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)


async def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = GuardedResolver(AddressGuard(FetchPolicy()))
    fake_dns(monkeypatch, "93.184.215.14", "10.0.0.7", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    found = await resolver.resolve("rebind.example", 443, socket.AF_UNSPEC)
    assert [r["host"] for r in found] == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    fake_dns(monkeypatch, "10.0.0.7", "169.254.169.254")
    with pytest.raises(FetchError) as caught:
        await resolver.resolve("rebind.example", 443, socket.AF_UNSPEC)
    assert caught.value.code == "blocked_address"
    assert "10.0.0.7 is private" in caught.value.message and "169.254.169.254 is link-local" in caught.value.message


async def test_unresolvable_name(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    fake_dns(monkeypatch)
    assert (await error("http://no-such-host.example/a.jpg", policy(port))).code == "unresolvable"


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "0.1.2.3",
    "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1", "::", "::1", "fe80::1", "fc00::1", "fd00:ec2::254",
    "fec0::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:0:a00:1", "64:ff9b::a00:1", "2002:a00:1::1", "::127.0.0.1",
])
def test_forbidden_addresses(address: str) -> None:
    assert AddressGuard(FetchPolicy()).refusal(ipaddress.ip_address(address), 80)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert AddressGuard(FetchPolicy()).refusal(ipaddress.ip_address(address), 80) is None


def test_allow_entries() -> None:
    guard = AddressGuard(FetchPolicy(allow=("10.0.0.0/8", "192.168.1.5", "127.0.0.1:8123", "[fd00::1]:443")))
    allowed = [("10.9.9.9", 80), ("192.168.1.5", 1), ("127.0.0.1", 8123), ("::ffff:127.0.0.1", 8123),
               ("fd00::1", 443)]
    refused = [("192.168.1.6", 80), ("127.0.0.1", 8124), ("fd00::1", 80), ("169.254.169.254", 80)]
    assert all(guard.refusal(ipaddress.ip_address(a), p) is None for a, p in allowed)
    assert all(guard.refusal(ipaddress.ip_address(a), p) for a, p in refused)
    for bad in ("10.0.0.1/8", "localhost", "127.0.0.1:http", "127.0.0.1:0", "[::1]"):
        with pytest.raises(ValueError, match="allow entry"):
            AddressGuard(FetchPolicy(allow=(bad,)))


# -- Loupe's own storage is never a source, whatever allows it --------------------------------------------

def storage_at(*servers: tuple[str, int]) -> tuple[str, ...]:
    return tuple(entry for address, port in servers for entry in own_storage(ipaddress.ip_address(address), port))


def test_our_storage_is_refused_even_where_allowed() -> None:
    guard = AddressGuard(FetchPolicy(allow=("127.0.0.0/8", "10.0.0.0/8", "[::1]:8333"),
                                     internal=storage_at(("127.0.0.1", 8333), ("10.1.2.3", 9000),
                                                         ("93.184.215.14", 443))))
    ours = [("127.0.0.1", 8333), ("127.0.0.2", 8333), ("::1", 8333), ("::ffff:127.0.0.1", 8333), ("0.0.0.0", 8333),
            ("::", 8333), ("64:ff9b::7f00:1", 8333), ("10.1.2.3", 9000), ("::ffff:10.1.2.3", 9000),
            ("93.184.215.14", 443)]
    for address, port in ours:
        reason = guard.refusal(ipaddress.ip_address(address), port)
        assert reason is not None and "is Loupe's own storage" in reason, (address, port)
    others = [("127.0.0.1", 8334), ("10.1.2.3", 9001), ("10.1.2.4", 9000), ("93.184.215.14", 80)]
    assert all(guard.refusal(ipaddress.ip_address(a), p) is None for a, p in others)


def test_own_storage_entries() -> None:
    assert own_storage(ipaddress.ip_address("127.0.0.1"), 8333) == (
        "127.0.0.0/8:8333", "[::1]:8333", "0.0.0.0:8333", "[::]:8333")
    assert own_storage(ipaddress.ip_address("::1"), 80) == own_storage(ipaddress.ip_address("127.0.0.5"), 80)
    assert own_storage(ipaddress.ip_address("10.0.0.5"), 9000) == ("10.0.0.5:9000",)
    assert own_storage(ipaddress.ip_address("fd00::5"), 9000) == ("[fd00::5]:9000",)


async def test_start_up_resolves_the_endpoint_and_the_public_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(s3_endpoint="minio:9000", s3_public_endpoint="s3.example.com", s3_secure=True)
    fake_dns(monkeypatch, "10.0.0.5", "fd00::5")
    assert await resolve_own_storage(settings) == ("10.0.0.5:9000", "[fd00::5]:9000", "10.0.0.5:443", "[fd00::5]:443")
    local = Settings(s3_endpoint="127.0.0.1:8333", s3_public_endpoint="")
    fake_dns(monkeypatch, "127.0.0.1")
    assert await resolve_own_storage(local) == own_storage(ipaddress.ip_address("127.0.0.1"), 8333)
    fake_dns(monkeypatch)  # resolves nothing
    assert await resolve_own_storage(Settings(s3_endpoint="", s3_public_endpoint="s3.example.com")) == ()
    with pytest.raises(socket.gaierror):  # without its own storage's addresses, ingest cannot guard it
        await resolve_own_storage(settings)


def test_every_service_fetches_within_the_policy_its_settings_make() -> None:
    settings = Settings(fetch_allow=" 10.0.0.0/8, 127.0.0.1:8123 ,", fetch_hosts="images.example.com=10.0.0.7,bad",
                        fetch_timeout_s=12.5, ingest_max_file_bytes=1000)
    assert policy_from(settings, ("10.0.0.5:9000",)) == FetchPolicy(
        max_bytes=1000, timeout_s=12.5, allow=("10.0.0.0/8", "127.0.0.1:8123"),
        hosts={"images.example.com": "10.0.0.7"}, internal=("10.0.0.5:9000",))


async def test_urls_never_reach_our_storage(port: int, other_port: int) -> None:
    rules = policy(port, allow=(f"127.0.0.1:{port}", f"127.0.0.1:{other_port}"),
                   internal=storage_at(("127.0.0.1", other_port)))
    for url in (f"http://127.0.0.1:{other_port}/", f"http://images.example.com:{other_port}/",
                f"http://[::1]:{other_port}/", f"http://127.0.0.1:{port}/redirect?to=http://127.0.0.1:{other_port}/"):
        failure = await error(url, rules)
        assert failure.code == "blocked_address" and "is Loupe's own storage" in failure.message, url
        assert "upload the file instead" in failure.message


# -- the S3 SDK's connections ---------------------------------------------------------------------------

async def test_s3_connections_go_only_where_the_policy_allows(port: int, other_port: int, hits: Counter[str]
                                                              ) -> None:
    http = guarded_http(policy(port))

    def get(url: str) -> tuple[int, bytes]:
        response = http.request("GET", url)
        return response.status, response.data

    assert await asyncio.to_thread(get, f"http://images.example.com:{port}/photos/a.jpg") == (200, CAT)
    assert await asyncio.to_thread(get, f"http://127.0.0.1:{port}/photos/b.jpg") == (200, CAT)
    for refused in (f"http://127.0.0.1:{other_port}/", f"http://localhost:{other_port}/",
                    "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(FetchError) as caught:
            await asyncio.to_thread(get, refused)
        assert caught.value.code == "blocked_address", refused
    with pytest.raises(FetchError) as caught:
        await asyncio.to_thread(guarded_http(policy(port, internal=storage_at(("127.0.0.1", port)))).request,
                                "GET", f"http://127.0.0.1:{port}/photos/a.jpg")
    assert "is Loupe's own storage" in caught.value.message
    assert hits["/photos/a.jpg"] == 1


async def test_s3_connections_follow_no_redirect(port: int, other_port: int) -> None:
    """An S3 answering 307 to another address would have the SDK read that address, unguarded."""
    http = guarded_http(policy(port, allow=(f"127.0.0.1:{port}", f"127.0.0.1:{other_port}")))
    response = await asyncio.to_thread(http.request, "GET", f"http://127.0.0.1:{port}/redirect?to=http://127.0.0.1:"
                                       f"{other_port}/")
    assert response.status == 302
