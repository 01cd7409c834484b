"""Settings from environment variables: the one table every way of running shares.

Each field below is read from ``LOUPE_<FIELD NAME IN UPPER CASE>``. Units are converted here, at the
edge: durations are seconds (``_s``), sizes are bytes. ``settings_table()`` renders the table the README
documents, so the docs and the code cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import GenericAlias

import msgspec

ENV_PREFIX = "LOUPE_"
# Variables of the local stack runner (``loupe up``), not of the services.
STACK_PREFIX = "LOUPE_STACK_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "postgresql://loupe:loupe@127.0.0.1:5432/loupe"
    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: str = "loupe"
    s3_secret_key: str = "loupe-secret"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_public_endpoint: str = ""
    bucket_prefix: str = "loupe-"
    triton_url: str = "127.0.0.1:8000"
    triton_grpc_url: str = "127.0.0.1:8001"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str = ""
    segments_port: int = 8081
    segments_public_url: str = ""
    log_level: str = "INFO"
    request_timeout_s: float = 10.0
    shutdown_grace_s: float = 20.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 256 * 1024 * 1024
    job_max_deliveries: int = 5
    job_backoff_s: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)
    job_ack_wait_s: float = 60.0
    events_max_age_s: float = 7 * 24 * 3600.0
    stream_replicas: int = 1
    outbox_poll_s: float = 1.0
    bootstrap_admin_key: str = ""
    auth_cache_s: float = 10.0
    db_pool_max: int = 10
    secrets_key: str = ""
    ingest_max_file_bytes: int = 50 * 1024 * 1024
    ingest_max_pixels: int = 100_000_000
    ingest_thumb_side: int = 256
    ingest_batch: int = 64
    ingest_workers: int = 8
    upload_url_expiry_s: int = 3600
    fetch_allow: str = ""
    fetch_hosts: str = ""
    fetch_timeout_s: float = 30.0
    label_lock_s: float = 600.0
    inference_batch: int = 16
    inference_in_flight: int = 4
    inference_idle_unload_s: float = 600.0
    inference_decode_threads: int = 4
    pipeline_folders: str = ""
    pipeline_mqtt_url: str = ""


DESCRIPTIONS: dict[str, str] = {
    "nats_url": "NATS server URL(s), comma separated; JetStream must be enabled",
    "database_url": "PostgreSQL DSN; each service uses its own schema in this database",
    "s3_endpoint": "S3 endpoint host:port (SeaweedFS locally, MinIO in compose/Kubernetes)",
    "s3_access_key": "S3 access key",
    "s3_secret_key": "S3 secret key",
    "s3_secure": "use HTTPS to reach S3",
    "s3_region": "S3 region (also used to sign presigned URLs without a round trip)",
    "s3_public_endpoint": "host:port clients use to reach S3 in presigned URLs; empty = s3_endpoint",
    "bucket_prefix": "prefix of every bucket name (media, thumbs, staging, releases, models)",
    "triton_url": "Triton HTTP endpoint host:port (health checks, the model repository's tests)",
    "triton_grpc_url": "Triton gRPC endpoint host:port: the inference service's only way to Triton",
    "http_host": "address this process's HTTP server binds (health, metrics; the API on the gateway)",
    "http_port": "port of this process's HTTP server",
    "public_url": "base URL clients use to reach the gateway; empty = http://http_host:http_port",
    "segments_port": "port of the gateway's Segments.ai dialect, served at the root of its own listener "
    "(the Segments SDK drops path prefixes); 0 = not served",
    "segments_public_url": "base URL clients use to reach the Segments.ai dialect; empty = http://http_host:segments_port",
    "log_level": "DEBUG, INFO, WARNING or ERROR; logs are JSON lines on stderr",
    "request_timeout_s": "how long a bus request waits for its reply, and the gateway for a request body "
    "(for each read of an upload) before answering 408",
    "shutdown_grace_s": "how long a stopping process waits for in-flight work",
    "max_body_bytes": "largest request body the gateway accepts (413 beyond)",
    "max_upload_bytes": "largest multipart upload (POST .../files, all files together) the gateway accepts (413 beyond)",
    "job_max_deliveries": "deliveries of a job or event before it goes to the dead-letter store",
    "job_backoff_s": "comma separated delays before each redelivery of a failed message",
    "job_ack_wait_s": "how long a consumer may hold a message before JetStream redelivers it",
    "events_max_age_s": "how long the events stream keeps events",
    "stream_replicas": "copies JetStream keeps of the events and jobs streams (3 on a NATS cluster)",
    "outbox_poll_s": "how often the outbox relay looks for unpublished events it was not told of",
    "bootstrap_admin_key": "admin API key created on first start; empty = generate one and log it once",
    "auth_cache_s": "longest the gateway trusts a verified API key or role without asking the catalog again; revocations apply at once through the catalog's events, this bounds a missed one",
    "db_pool_max": "largest number of Postgres connections per process",
    "secrets_key": "secret that encrypts stored credentials (bucket imports, S3 pipeline sources); any long random string",
    "ingest_max_file_bytes": "largest image file ingest accepts",
    "ingest_max_pixels": "largest image (width × height) ingest decodes; bigger ones are refused as bombs",
    "ingest_thumb_side": "longest side of thumbnails, in pixels",
    "ingest_batch": "images ingest validates, stores and registers together",
    "ingest_workers": "threads per ingest process for decoding and S3 transfers",
    "upload_url_expiry_s": "how long presigned upload URLs stay valid",
    "fetch_allow": "comma separated exceptions to the private-address ban of URL and bucket imports: CIDR, ip or ip:port",
    "fetch_hosts": "comma separated name=ip overrides for URL imports, like /etc/hosts",
    "fetch_timeout_s": "how long one URL fetch may take, redirects included",
    "label_lock_s": "how long a sample handed out by a work queue stays locked for its labeler or reviewer",
    "inference_batch": "images per request to Triton; a job sends several at once for the dynamic batcher to merge",
    "inference_in_flight": "requests to Triton in flight per inference process, all models together",
    "inference_idle_unload_s": "a model version no request or job used for this long is unloaded from Triton",
    "inference_decode_threads": "threads per inference process that decode and resize images",
    "pipeline_folders": "comma separated folders of this server that pipelines may read frames from and write results to",
    "pipeline_mqtt_url": "the MQTT broker (mqtt://host:port) pipelines' mqtt sinks publish to; none: no mqtt sinks",
}


class SettingsError(ValueError):
    pass


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _parse(field: str, kind: type | GenericAlias, raw: str) -> object:
    if isinstance(kind, GenericAlias):  # tuple[float, ...], the only generic type of a setting
        return tuple(float(part) for part in raw.split(",") if part.strip())
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{env_name(field)}={raw!r}: expected true or false")
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{env_name(field)}={raw!r}: expected {kind.__name__}") from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every ``LOUPE_*`` variable; unknown ``LOUPE_*`` names are refused to catch typos."""
    environ = os.environ if environ is None else environ
    known = {env_name(f.name): f for f in msgspec.structs.fields(Settings)}
    values: dict[str, object] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name.startswith(STACK_PREFIX):
            continue
        field = known.get(name)
        if field is None:
            raise SettingsError(f"unknown setting {name}; known settings: {', '.join(sorted(known))}")
        values[field.name] = _parse(field.name, field.type, raw)
    settings = msgspec.convert(values, Settings)
    if settings.job_max_deliveries < 1:
        raise SettingsError(f"{env_name('job_max_deliveries')} must be at least 1")
    return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a child process."""
    env = {}
    for field in msgspec.structs.fields(Settings):
        value = getattr(settings, field.name)
        if isinstance(value, tuple):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        env[env_name(field.name)] = text
    return env


def settings_table() -> str:
    """The configuration table, as Markdown, for the README."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    defaults = Settings()
    for name, text in settings_env(defaults).items():
        field = name[len(ENV_PREFIX) :].lower()
        rows.append(f"| `{name}` | `{text}` | {DESCRIPTIONS[field]} |")
    return "\n".join(rows)
