"""Prometheus metrics every service exposes on `/metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BUS_HANDLED = Counter("loupe_bus_commands_total", "Commands answered, by subject and outcome", ["subject", "outcome"])
BUS_HANDLE_SECONDS = Histogram("loupe_bus_command_seconds", "Time to answer a command", ["subject"])
OUTBOX_PUBLISHED = Counter("loupe_outbox_published_total", "Outbox rows published to JetStream")
OUTBOX_PENDING = Gauge("loupe_outbox_pending", "Outbox rows not yet published, as last seen")
CONSUMED = Counter(
    "loupe_consumer_messages_total", "Messages a durable consumer finished, by outcome", ["consumer", "outcome"]
)
CONSUME_SECONDS = Histogram("loupe_consumer_seconds", "Time to handle one message", ["consumer"])
DEAD_LETTERS = Counter("loupe_dead_letters_total", "Messages moved to the dead-letter store", ["consumer"])
HTTP_REQUESTS = Counter(
    "loupe_http_requests_total", "Gateway HTTP requests, by operation and status", ["operation", "status"]
)
HTTP_SECONDS = Histogram("loupe_http_request_seconds", "Gateway HTTP request time", ["operation"])
S3_REQUESTS = Counter(
    "loupe_s3_requests_total",
    "Requests that read, write or delete objects of Loupe's own S3, by bucket and method; a batched delete "
    "counts one per 1,000 keys",
    ["bucket", "method"],
)
