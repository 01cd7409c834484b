"""The inference service: predictions now, and auto-label, embeddings and ranking jobs, through Triton only
(tritonclient's asyncio gRPC client). It is ready only while Triton is."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from proto import subjects
from proto.inference import InferenceJobRun
from services.inference import jobs, pipelines, predict, runner, saved_io
from services.inference.images import Decoder
from services.inference.state import DECODER, TRITON
from services.inference.triton import TritonModels
from shared import fetch
from shared.service import Runtime, Service

service = Service("inference", migrations=Path(__file__).parent / "migrations")

service.answer([*predict.ANSWERS, *jobs.ANSWERS, *pipelines.ANSWERS, *saved_io.ANSWERS])
service.consumer("job", subjects.JOBS_STREAM, subjects.INFERENCE_JOB.subject, InferenceJobRun)(runner.run_job)
service.on_event(subjects.PROJECT_DELETED)(pipelines.on_project_deleted)


@service.context
async def triton_models(rt: Runtime) -> AsyncIterator[None]:
    settings = rt.settings
    models = TritonModels(
        settings.triton_grpc_url,
        batch=settings.inference_batch,
        in_flight=settings.inference_in_flight,
        idle_unload_s=settings.inference_idle_unload_s,
    )
    rt.state[TRITON] = models
    rt.state[DECODER] = Decoder(settings.inference_decode_threads)

    async def sweep() -> None:
        while True:
            await asyncio.sleep(max(settings.inference_idle_unload_s / 4, 1.0))
            await models.unload_idle()

    sweeper = asyncio.create_task(sweep())
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        rt.state[DECODER].close()
        await models.close()


# The guarded HTTP client predict by URL fetches with, under the rules of ingest's URL imports.
service.context(fetch.fetching)
# After Triton and fetching: the enabled pipelines start with the service and use both.
service.context(pipelines.running_pipelines)


@service.ready_check("triton")
async def triton_ready(rt: Runtime) -> None:
    if not await rt.state[TRITON].client.is_server_ready():
        raise RuntimeError(f"Triton at {rt.settings.triton_grpc_url} is not ready")
