"""The inference service. It talks to Triton only through tritonclient's asyncio client; it is ready
only while Triton is."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tritonclient.http.aio import InferenceServerClient

from shared.service import Runtime, Service, StateKey

TRITON = StateKey("triton client", InferenceServerClient)

service = Service("inference")


@service.context
async def triton_client(rt: Runtime) -> AsyncIterator[None]:
    client = InferenceServerClient(rt.settings.triton_url, conn_timeout=5.0)
    rt.state[TRITON] = client
    try:
        yield
    finally:
        await client.close()


@service.ready_check("triton")
async def triton_ready(rt: Runtime) -> None:
    if not await rt.state[TRITON].is_server_ready():
        raise RuntimeError(f"Triton at {rt.settings.triton_url} is not ready")
