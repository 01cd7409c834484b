"""Schemathesis against the running gateway: no input may answer 500, and every response must be the
one /openapi.json documents (status, content type, body schema).

It runs as an organisation of its own, so what it creates stays out of the other tests' way, and with a
seeded project, dataset and samples so generated requests reach past "404 no such project". The seed is
fixed, so CI sees the same requests every run; `FUZZ_SEED=random` (or a number) explores further,
`FUZZ_EXAMPLES` raises the examples per operation.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from loupe.stack import Stack
from tests.helpers import eventually

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
SEED = os.environ.get("FUZZ_SEED", "20261206")
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")


def tiny_jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 64, 128)).save(out, "JPEG")
    return out.getvalue()


async def post(client: aiohttp.ClientSession, path: str, body: dict) -> dict:
    async with client.post(path, json=body) as response:
        assert response.status in (200, 201, 202), await response.text()
        return await response.json()


async def seed_organisation(api: aiohttp.ClientSession, stack: Stack, unique: str) -> dict[str, list[str] | str]:
    """A fresh organisation with a project the fuzzer may change, and things it may delete."""
    org = await post(api, "/v1/orgs", {"name": f"fuzz {unique}", "admin_name": "Fuzz",
                                       "admin_email": f"fuzz@{unique}.example"})
    key = org["api_key"]["key"]
    async with aiohttp.ClientSession(stack.gateway_url, headers={"Authorization": f"Bearer {key}"}) as client:
        project = await post(client, "/v1/projects", {"name": "fuzzed", "task_type": "bboxes"})
        spare_projects = [(await post(client, "/v1/projects", {"name": f"spare {i}"}))["id"] for i in range(3)]
        base = f"/v1/projects/{project['id']}"
        dataset = await post(client, f"{base}/datasets", {"name": "main"})
        spare_dataset = await post(client, f"{base}/datasets", {"name": "spare"})
        label_class = await post(client, f"{base}/label-classes", {"name": "car"})
        form = aiohttp.FormData()
        for shade in (10, 200):
            form.add_field("file", tiny_jpeg(shade), filename=f"{shade}.jpg", content_type="image/jpeg")
        async with client.post(f"{base}/datasets/{dataset['id']}/files", data=form) as response:
            assert response.status in (201, 202), await response.text()

        async def both_samples() -> list[str]:
            # The upload may answer 202 before its images are samples.
            async with client.get(f"{base}/samples", params={"limit": "10"}) as response:
                found = [sample["id"] for sample in (await response.json())["items"]]
            return found if len(found) == 2 else []

        samples = await eventually(both_samples, timeout=60)
    return {"key": key, "project_id": [project["id"]], "spare_project_id": spare_projects,
            "dataset_id": [dataset["id"]], "spare_dataset_id": [spare_dataset["id"]], "sample_id": samples,
            "class_id": [label_class["id"]], "labelset": ["ground-truth"]}


def config(seeded: dict[str, list[str] | str]) -> str:
    """schemathesis.toml: seeded ids stand in for path parameters most of the time; deleting the project
    or the dataset every other operation uses is done to spares."""
    def dictionary(name: str) -> str:
        values = ", ".join(f'"{value}"' for value in seeded[name])
        return f"[dictionaries.{name}]\nvalues = [{values}]\n"

    bound = ("project_id", "dataset_id", "sample_id", "class_id", "labelset")
    parameters = "\n".join(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.8 }}' for name in bound)
    return "\n".join([
        f"[generation]\nmax-examples = {EXAMPLES}\n",
        *(dictionary(name) for name in (*bound, "spare_project_id", "spare_dataset_id")),
        f"[parameters]\n{parameters}\n",
        '[[operations]]\ninclude-operation-id = "deleteProject"\n'
        '[operations.parameters]\n"path.project_id" = { dictionary = "spare_project_id" }\n',
        '[[operations]]\ninclude-operation-id = "deleteDataset"\n'
        '[operations.parameters]\n"path.dataset_id" = { dictionary = "spare_dataset_id" }\n',
    ])


@pytest.mark.timeout(900)
async def test_no_input_answers_500_or_breaks_the_openapi_document(api, stack, unique, tmp_path: Path) -> None:
    seeded = await seed_organisation(api, stack, unique)
    config_file = tmp_path / "schemathesis.toml"
    config_file.write_text(config(seeded))
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "run",
               f"{stack.gateway_url}/openapi.json", "--header", f"Authorization: Bearer {seeded['key']}",
               "--checks", ",".join(CHECKS), "--phases", "examples,coverage,fuzzing", "--no-color",
               "--workers", "2", "--request-timeout", "30", "--generation-database", "none",
               "--warnings", "off"]
    if SEED != "random":
        command += ["--seed", SEED]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
