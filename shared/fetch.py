"""Fetch a URL, or read an S3 bucket, on a user's behalf without letting it reach into Loupe's own network
(SSRF) or Loupe's own storage: ingest's URL and bucket imports, inference's predict by URL.

The address check lives in the resolver of the session's connector: the connector connects only to addresses
the resolver returned, so a name cannot resolve to a public address for the check and a private one for the
connection (DNS rebinding). IP literals never reach a resolver in aiohttp, so fetch_url checks those itself,
and it follows redirects one hop at a time so that every hop is checked. The S3 SDK's connections of bucket
imports pass the same guard (`guarded_http`), and follow no redirect at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import msgspec
import urllib3
from aiohttp.abc import AbstractResolver, ResolveResult
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from yarl import URL

from shared.service import Runtime, StateKey
from shared.settings import Settings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_bytes: int = 50 * 1024 * 1024
    timeout_s: float = 30.0  # the whole fetch, redirects included
    connect_timeout_s: float = 5.0
    max_redirects: int = 5
    # Exceptions to the private-address ban: "10.0.0.0/8", "192.168.1.5", "127.0.0.1:8123", "[fd00::1]:8123".
    allow: tuple[str, ...] = ()
    # Static name → IP overrides, like /etc/hosts (air-gapped deployments); their addresses are checked too.
    hosts: dict[str, str] = {}
    # Where Loupe's own storage answers, as "ip:port" or "network:port" (see `own_storage`): refused even where
    # `allow` allows it, so no fetch ever reads another organisation's files.
    internal: tuple[str, ...] = ()


# What a service fetches with, opened once per process by its `fetching` context.
POLICY = StateKey("fetch policy", FetchPolicy)
SESSION = StateKey("fetch session", aiohttp.ClientSession)


class FetchedFile(msgspec.Struct, frozen=True, kw_only=True):
    url: str  # final URL, after redirects
    data: bytes
    content_type: str  # media type without parameters; application/octet-stream when the server sent none
    filename: str  # last path segment of the requested URL, URL-decoded ("" if none): a label, never a path


class FetchError(Exception):
    """A fetch Loupe refuses or cannot complete: `code` is a short reason (`blocked_address`, `too_large`,
    `http_error`, ...), `message` says what is wrong and what to do, in words a user can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"FetchError({self.code!r}, {self.message!r})"


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BLOCKED_ADVICE = (
    "Loupe never reads its own storage, nor private addresses unless an admin allows them: "
    "upload the file instead, or import from your own server"
)
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
# IPv6 prefixes whose last 32 bits are an IPv4 address the packet is delivered to: IPv4-translated (SIIT)
# and the well-known NAT64 prefix. IPv4-mapped and 6to4 have their own ipaddress properties.
_IPV4_CARRIERS = tuple(ipaddress.ip_network(n) for n in ("::ffff:0:0:0/96", "64:ff9b::/96"))


# -- a service's fetches ----------------------------------------------------------------------------------


async def fetching(rt: Runtime) -> AsyncIterator[None]:
    """A service context: the policy the settings make, and a session made for it, in `rt.state` while the
    service runs (`download`)."""
    policy = policy_from(rt.settings, await resolve_own_storage(rt.settings))
    rt.state[POLICY] = policy
    async with make_session(policy) as session:
        rt.state[SESSION] = session
        yield


async def download(rt: Runtime, url: str, timeout_s: float | None = None) -> FetchedFile:
    """fetch_url with the service's session and policy, which its `fetching` context opened; within
    `timeout_s` where that is shorter than the policy's (a caller waiting for the answer gives up sooner)."""
    policy = rt.state[POLICY]
    if timeout_s is not None and timeout_s < policy.timeout_s:
        policy = msgspec.structs.replace(policy, timeout_s=timeout_s)
    return await fetch_url(rt.state[SESSION], url, policy)


def check_target(rt: Runtime, url: str) -> None:
    """Refuse at once (FetchError) a URL `post` would refuse without connecting: not http(s), with
    credentials, or a forbidden IP literal. Names are checked when they are resolved."""
    _check_literal(_guard_of(rt.state[SESSION], rt.state[POLICY]), _checked_url(url))


async def post(rt: Runtime, url: str, body: bytes, content_type: str = "application/json") -> None:
    """POST `body` to `url` under the service's policy (never to a private address or Loupe's own storage),
    following no redirect; FetchError unless it answers 2xx."""
    policy = rt.state[POLICY]
    session = rt.state[SESSION]
    target = _checked_url(url)
    _check_literal(_guard_of(session, policy), target)
    timeout = aiohttp.ClientTimeout(total=None, connect=policy.connect_timeout_s)
    try:
        async with (
            asyncio.timeout(policy.timeout_s),
            session.post(
                target, data=body, headers={"Content-Type": content_type}, allow_redirects=False, timeout=timeout
            ) as response,
        ):
            if not 200 <= response.status < 300:
                raise FetchError("http_error", f"{target} answered HTTP {response.status} {response.reason}")
    except TimeoutError as e:
        raise FetchError("timeout", f"{target} did not answer within {policy.timeout_s:g} s") from e
    except aiohttp.ClientError as e:
        raise FetchError("connection_failed", f"could not POST to {target}: {e}") from e


def policy_from(settings: Settings, internal: tuple[str, ...]) -> FetchPolicy:
    """The settings' policy, refusing `internal` (`resolve_own_storage`): every service fetches within the
    same one, as large as an image file ingest accepts."""
    allow = tuple(entry.strip() for entry in settings.fetch_allow.split(",") if entry.strip())
    hosts = dict(entry.strip().split("=", 1) for entry in settings.fetch_hosts.split(",") if "=" in entry)
    return FetchPolicy(
        max_bytes=settings.ingest_max_file_bytes,
        timeout_s=settings.fetch_timeout_s,
        allow=allow,
        hosts=hosts,
        internal=internal,
    )


async def resolve_own_storage(settings: Settings) -> tuple[str, ...]:
    """Every address:port Loupe's own S3 answers on, from its endpoint and its public endpoint as they resolve
    now: fetches refuse them all. The endpoint must resolve (a service needs it anyway); a public endpoint that
    does not resolve here cannot be reached by name from here either, so it is only logged."""
    entries: list[str] = []
    for endpoint in dict.fromkeys(e for e in (settings.s3_endpoint, settings.s3_public_endpoint) if e):
        where = urlsplit(f"//{endpoint}")
        port = where.port or (443 if settings.s3_secure else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(where.hostname, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            if endpoint == settings.s3_endpoint:
                raise
            log.warning(
                "the S3 public endpoint %s does not resolve here (%s): fetches are kept away "
                "from the S3 endpoint's addresses only",
                endpoint,
                e.strerror,
            )
            continue
        for info in infos:
            entries += own_storage(ipaddress.ip_address(info[4][0]), port)
    return tuple(dict.fromkeys(entries))


# -- fetching a URL ---------------------------------------------------------------------------------------


def make_session(policy: FetchPolicy) -> aiohttp.ClientSession:
    """A session for fetch_url; make it inside the running loop and close it when done.

    No cookies are kept, because one session serves every user's fetches, and proxies from the environment
    are ignored, because a proxy would resolve and connect past the guard.
    """
    return aiohttp.ClientSession(
        connector=GuardedConnector(policy), cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )


async def fetch_url(session: aiohttp.ClientSession, url: str, policy: FetchPolicy) -> FetchedFile:
    """GET `url` (http or https) into memory, within `policy`; raise FetchError for anything it refuses."""
    guard = _guard_of(session, policy)
    requested = current = _checked_url(url)
    timeout = aiohttp.ClientTimeout(total=None, connect=policy.connect_timeout_s)
    try:
        async with asyncio.timeout(policy.timeout_s):
            for _ in range(policy.max_redirects + 1):
                _check_literal(guard, current)
                async with session.get(current, allow_redirects=False, timeout=timeout) as response:
                    if response.status in _REDIRECTS:
                        current = _redirect_target(current, response)
                        continue
                    if not 200 <= response.status < 300:
                        raise FetchError(
                            "http_error",
                            f"{current} answered HTTP {response.status} {response.reason}; "
                            "check that the URL is right and publicly readable",
                        )
                    data = await _read_body(response, policy.max_bytes, current)
                    return FetchedFile(
                        url=str(current), data=data, content_type=response.content_type, filename=requested.name
                    )
            raise FetchError(
                "too_many_redirects",
                f"{url} redirected more than {policy.max_redirects} times "
                f"(last to {current}); use the final URL of the file",
            )
    except aiohttp.ConnectionTimeoutError as e:
        raise FetchError(
            "timeout",
            f"could not connect to {current.host} within {policy.connect_timeout_s:g} s; "
            "check the host is up and reachable from the Loupe server",
        ) from e
    except TimeoutError as e:
        raise FetchError(
            "timeout",
            f"fetching {url} took longer than {policy.timeout_s:g} s; try again later or upload the file directly",
        ) from e
    except aiohttp.InvalidURL as e:
        raise FetchError(
            "bad_url", f"{current} is not a valid URL ({e}); write the host as a name or a plain IP address"
        ) from e
    except aiohttp.ClientError as e:
        raise FetchError(
            "connection_failed",
            f"fetching {current} failed: {e}; check the host is up and reachable from the Loupe server",
        ) from e


class GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector that resolves through AddressGuard; fetch_url refuses any other, whose DNS is unguarded."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self.guard = AddressGuard(policy)
        super().__init__(resolver=GuardedResolver(self.guard))


class AddressGuard:
    """Which addresses (and ports) a policy lets Loupe connect to: public ones, and the private ones it allows,
    never its own storage."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.allow = [_parse_allow(entry) for entry in policy.allow]
        self.internal = [_parse_allow(entry) for entry in policy.internal]
        self.hosts = {
            name.rstrip(".").lower(): _parse_ip(ip, f"hosts entry {name!r}") for name, ip in policy.hosts.items()
        }

    def refusal(self, ip: IPAddress, port: int) -> str | None:
        """Why Loupe must not connect to ip:port ("10.0.0.1 is private (RFC 1918)"), or None when it may."""
        delivered_to = (_carried_ipv4(ip) or ip) if isinstance(ip, ipaddress.IPv6Address) else ip
        if any(delivered_to in network and port == own_port for network, own_port in self.internal):
            return f"{ip} port {port} is Loupe's own storage"
        reason = _private_reason(ip)
        if reason is None:
            return None
        plain = (ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else ip
        if any(plain in network and allowed in (None, port) for network, allowed in self.allow):
            return None
        return f"{ip} {reason}"

    def pinned(self, host: str) -> IPAddress | None:
        return self.hosts.get(host.rstrip(".").lower())

    def passed(self, host: str, port: int, addresses: list[IPAddress]) -> list[IPAddress]:
        """The addresses `host` resolved to that Loupe may connect to; none is FetchError("blocked_address"),
        naming every refused address."""
        verdicts = [(ip, self.refusal(ip, port)) for ip in addresses]
        allowed = [ip for ip, reason in verdicts if reason is None]
        if not allowed:
            refusals = "; ".join(reason for _, reason in verdicts if reason)
            raise FetchError(
                "blocked_address", f"{host} resolves only to forbidden addresses: {refusals}. {_BLOCKED_ADVICE}"
            )
        return allowed

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """`passed` for the addresses the system resolves `host` to now: the blocking form, for threads."""
        pinned = self.pinned(host)
        if pinned is not None:
            return self.passed(host, port, [pinned])
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise _unresolvable(host, e) from e
        return self.passed(host, port, _addresses(infos))


class GuardedResolver(AbstractResolver):
    """Resolves a name (the policy's hosts first, then the system) and keeps only the addresses the guard allows.

    A name with no allowed address at all raises FetchError("blocked_address"), naming every refused address.
    """

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        allowed = self.guard.passed(host, port, await self._lookup(host, port, family))
        # Numeric flags: the connector gets the checked addresses, and nothing downstream resolves them again.
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                proto=0,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for ip in allowed
        ]

    async def _lookup(self, host: str, port: int, family: socket.AddressFamily) -> list[IPAddress]:
        pinned = self.guard.pinned(host)
        if pinned is not None:
            return [pinned]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise _unresolvable(host, e) from e
        return _addresses(infos)

    async def close(self) -> None:
        pass


def _unresolvable(host: str, error: socket.gaierror) -> FetchError:
    return FetchError("unresolvable", f"{host} cannot be resolved ({error.strerror}); check the host name")


def _addresses(infos: list[tuple]) -> list[IPAddress]:
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


# -- the S3 SDK's HTTP client ----------------------------------------------------------------------------


def guarded_http(policy: FetchPolicy) -> urllib3.PoolManager:
    """An HTTP client for the minio SDK that connects only where `policy` lets Loupe connect, and follows no
    redirect (an S3 answering 307 to an internal address would otherwise be followed)."""
    guard = AddressGuard(policy)
    manager = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=policy.connect_timeout_s, read=policy.timeout_s),
        retries=urllib3.Retry(total=5, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504), redirect=False),
    )

    def guarded(pool: type[HTTPConnectionPool], connection: type[HTTPConnection]) -> type[HTTPConnectionPool]:
        checked = type(f"Guarded{connection.__name__}", (_GuardedConnect, connection), {"guard": guard})
        return type(f"Guarded{pool.__name__}", (pool,), {"ConnectionCls": checked})

    manager.pool_classes_by_scheme = {
        "http": guarded(HTTPConnectionPool, HTTPConnection),
        "https": guarded(HTTPSConnectionPool, HTTPSConnection),
    }
    return manager


class _GuardedConnect(HTTPConnection):
    """Mixed into urllib3's connections: connect to an address the guard passed, never to one resolved apart."""

    guard: AddressGuard

    def _new_conn(self) -> socket.socket:
        # urllib3 resolves `_dns_host` as it connects: hand it a checked address for that moment only, since
        # the name stays what the Host header and TLS verify.
        name = self._dns_host
        self._dns_host = str(self.guard.resolve(name, self.port)[0])
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


# -- Loupe's own storage ---------------------------------------------------------------------------------


def own_storage(ip: IPAddress, port: int) -> tuple[str, ...]:
    """The `FetchPolicy.internal` entries for Loupe's storage answering at ip:port. On a loopback address it
    is also reached through every other loopback address and the unspecified ones, so those count as it."""
    if ip.is_loopback:
        return (f"127.0.0.0/8:{port}", f"[::1]:{port}", f"0.0.0.0:{port}", f"[::]:{port}")
    return (f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}",)


def _guard_of(session: aiohttp.ClientSession, policy: FetchPolicy) -> AddressGuard:
    connector = session.connector
    if not isinstance(connector, GuardedConnector):
        raise TypeError("fetch_url needs a session from make_session(policy): any other resolves names unguarded")
    if (connector.policy.allow, connector.policy.hosts, connector.policy.internal) != (
        policy.allow,
        policy.hosts,
        policy.internal,
    ):
        raise ValueError("the session was made for another address policy; make it with make_session(policy)")
    return connector.guard


def _checked_url(text: str, base: URL | None = None) -> URL:
    """`text` (resolved against `base` for a redirect) as a URL Loupe may request, or FetchError("bad_url")."""
    shown = f"{base} redirects to {text!r}, which" if base else repr(text)
    try:
        url = base.join(URL(text)) if base else URL(text)
    except ValueError as e:
        raise FetchError("bad_url", f"{shown} is not a valid URL ({e}); check it") from e
    if url.scheme not in ("http", "https"):
        raise FetchError("bad_url", f"{shown} is not an http:// or https:// URL; Loupe fetches only those")
    if url.user is not None or url.password is not None:
        raise FetchError(
            "bad_url",
            f"{shown} contains credentials; Loupe does not send them: make the file "
            "readable without them, or upload it",
        )
    if not url.host:
        raise FetchError("bad_url", f"{shown} has no host; write a full URL such as https://example.com/a.jpg")
    return url


def _redirect_target(current: URL, response: aiohttp.ClientResponse) -> URL:
    location = response.headers.get(aiohttp.hdrs.LOCATION)
    if not location:
        raise FetchError(
            "http_error",
            f"{current} answered HTTP {response.status} without a Location header; use the final URL of the file",
        )
    return _checked_url(location, current)


def _check_literal(guard: AddressGuard, url: URL) -> None:
    """Refuse a URL whose host is a forbidden IP literal; host names are left to GuardedResolver."""
    assert url.host is not None and url.port is not None  # _checked_url: http(s) with a host
    try:
        ip = ipaddress.ip_address(url.host)
    except ValueError:
        return
    if reason := guard.refusal(ip, url.port):
        raise FetchError("blocked_address", f"{reason}. {_BLOCKED_ADVICE}")


async def _read_body(response: aiohttp.ClientResponse, limit: int, url: URL) -> bytes:
    """The body, read no further than `limit` bytes: Content-Length can be absent or a lie."""
    advice = "download it yourself, shrink it and upload it"
    if response.content_length is not None and response.content_length > limit:
        raise FetchError(
            "too_large", f"{url} is {response.content_length:,} bytes, over the limit of {limit:,}; {advice}"
        )
    chunks, size = [], 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise FetchError("too_large", f"{url} is over the limit of {limit:,} bytes; {advice}")
        chunks.append(chunk)
    return b"".join(chunks)


def _private_reason(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address, as a phrase to follow it ("is loopback"), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        carried = _carried_ipv4(ip)
        if carried is not None:
            reason = _private_reason(carried)
            return f"carries {carried}, which {reason}" if reason else None
    if ip in _THIS_NETWORK:
        return "is in 0.0.0.0/8 (this network)"
    if ip.is_unspecified:
        return "is unspecified"
    if ip.is_loopback:
        return "is loopback"
    if ip.is_link_local:
        return "is link-local (cloud metadata)" if ip in _METADATA else "is link-local"
    if ip in _UNIQUE_LOCAL:
        return "is unique-local (cloud metadata)" if ip in _METADATA else "is unique-local"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "is site-local"
    if ip in _CGNAT:
        return "is shared address space (CGNAT)"
    if any(ip in network for network in _RFC1918):
        return "is private (RFC 1918)"
    if ip.is_multicast:
        return "is multicast"
    if ip.is_reserved:
        return "is reserved"
    if not ip.is_global:
        return "is not a public address"  # documentation, benchmarking and protocol ranges
    return None


def _carried_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a packet to `ip` is delivered to, for the IPv6 forms that embed one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in network for network in _IPV4_CARRIERS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return ip.sixtofour


def _parse_allow(entry: str) -> tuple[IPNetwork, int | None]:
    """An allow entry: "10.0.0.0/8", "192.168.1.5", "fd00::/8", "127.0.0.1:8123" or "[fd00::1]:8123"."""
    address, port = entry, None
    if entry.startswith("[") and "]:" in entry:
        address, port = entry[1:].split("]:", 1)
    elif entry.count(":") == 1:
        address, port = entry.split(":")
    try:
        network = ipaddress.ip_network(address)
        number = None if port is None else int(port)
    except ValueError as e:
        raise ValueError(f"allow entry {entry!r} is not an IP, a CIDR or ip:port ({e})") from e
    if number is not None and not 0 < number < 65536:
        raise ValueError(f"allow entry {entry!r} has port {number}, outside 1..65535")
    return network, number


def _parse_ip(text: str, what: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError as e:
        raise ValueError(f"{what}: {text!r} is not an IP address") from e
