"""Uploads whose bytes come with the request: the gateway's multipart upload (`POST …/files`).

The bytes are in memory already, so they skip staging. Each image is validated, hashed and thumbnailed in
memory and stored at its final, content-addressed key; only then is the run recorded, finished, in one
transaction. A new image costs one S3 PUT (two when it needs a thumbnail of its own), where a presigned upload
costs a staging PUT, a staging GET, the same PUTs and a share of a batched delete. A presigned upload still
needs staging: its client PUTs the bytes before anyone knows their hash.

The pipeline's guarantees hold. Nothing is stored before it validated, so an invalid file leaves no object and
no sample. The same bytes are stored once, under their hash, and recorded as a DUPLICATE where the dataset has
them. A crash before the transaction commits leaves no run and no sample, and the request fails (503), so the
caller sends it again. What the dead request had stored are valid originals that no sample names yet, as when
an import's batch dies between storing and recording; the retry finds them stored.
"""

from __future__ import annotations

import asyncio
import uuid

from proto import subjects
from proto.ingest import FileSpec, Run, UploadFilesRequest
from services.ingest import pipeline
from services.ingest.runs import add_items, check_dataset, create_run
from shared.bus import RequestContext
from shared.service import Answers, Runtime

ANSWERS = Answers()


@ANSWERS(subjects.UPLOAD_FILES)
async def upload_files(rt: Runtime, request: UploadFilesRequest, ctx: RequestContext) -> Run:
    caller = ctx.require_caller()
    project_id, dataset_id = request.project_id, request.dataset_id
    await check_dataset(rt, project_id, dataset_id)
    checked = await asyncio.gather(*(pipeline.check(rt, file.data) for file in request.files))
    existing, stored = await pipeline.store_new(rt, project_id, dataset_id, checked)
    entries = [(f"upload:{index}", FileSpec(name=file.name)) for index, file in enumerate(request.files)]
    items: list[pipeline.Item] = [
        {"idx": index, "source": source, "name": spec.name, "external_id": None, "metadata": {}, "priority": 0.0}
        for index, (source, spec) in enumerate(entries)
    ]
    async with rt.db.acquire() as conn, conn.transaction():
        run_id = await create_run(conn, project_id, dataset_id, "upload", "upload", caller.org_id, caller.key_id)
        run = {"project_id": project_id, "dataset_id": dataset_id, "org_id": uuid.UUID(caller.org_id)}
        outcomes = await pipeline.settle(conn, run, list(zip(items, checked, strict=True)), existing, stored)
        await add_items(conn, run_id, 0, entries, "PENDING", outcomes.updates)
        await pipeline.register_outcomes(conn, run_id, project_id, outcomes)
        return await pipeline.finish_at_once(conn, run_id)
