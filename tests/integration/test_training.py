"""Training on the real stack: synthetic data loaded through the API (loupe.synth), runs that train in the
training service's child process, progress on the project's event stream, each run's log, cancellation, a
training process killed mid-run that resumes from its checkpoint, the model registry, and the 4xx answers."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import aiohttp
import msgspec
import pytest

from loupe import synth
from loupe.stack import Stack
from shared import object_keys
from shared.storage import Storage
from tests.helpers import call, create, eventually, finished

IMAGES = 60
# Small and short: the suite trains on two shared CPU cores.
QUICK = {"epochs": 2, "batch_size": 16, "image_size": 64, "workers": 0}
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
async def project(stack: Stack, api: aiohttp.ClientSession) -> str:
    """A project with 60 labelled synthetic images (train and val datasets) and a quick configuration."""
    images = synth.generate(IMAGES, size=64, seed=7)
    loaded = await synth.load(images, stack.gateway_url, stack.admin_key, name="training tests", progress=False)
    path = f"/v1/projects/{loaded.project_id}"
    await call(api, "PUT", f"{path}/training/config", json=QUICK)
    return path


async def start(api: aiohttp.ClientSession, project: str, **run: object) -> dict:
    return await call(api, "POST", f"{project}/training/runs", 202, json=run)


async def done(api: aiohttp.ClientSession, project: str, run: dict, timeout: float = 240) -> dict:
    return await finished(api, f"{project}/training/runs/{run['id']}", timeout)


async def project_events(api: aiohttp.ClientSession, project: str, last: Callable[[dict], bool]) -> list[dict]:
    """The project's events from the start of the stream, through its SSE endpoint, up to the first one for
    which `last` is true: `{"event": type, "data": envelope}` each."""
    events: list[dict] = []
    async with api.get(f"{project}/events", headers={"Last-Event-ID": "0"}) as response:
        current: dict = {}
        while True:
            line = (await asyncio.wait_for(response.content.readline(), 10)).decode().rstrip("\n")
            if line:
                field, _, value = line.partition(": ")
                current[field] = value
                continue
            if "data" in current:
                event = {"event": current["event"], "data": msgspec.json.decode(current["data"])}
                events.append(event)
                if last(event):
                    return events
            current = {}


def run_finished(run_id: str) -> Callable[[dict], bool]:
    def test(event: dict) -> bool:
        data = event["data"]["data"]
        return event["event"] == "training.run.changed" and data["id"] == run_id and data["finished_at"] is not None

    return test


async def run_log(api: aiohttp.ClientSession, project: str, run_id: str, limit: int = 1000) -> list[dict]:
    """A finished run's whole log, `limit` lines a page, following `next_cursor` to its end."""
    lines: list[dict] = []
    params: dict[str, str | int] = {"limit": limit}
    while True:
        page = await call(api, "GET", f"{project}/training/runs/{run_id}/log", params=params)
        assert len(page["items"]) <= limit
        lines += page["items"]
        if page["next_cursor"] is None:
            return lines
        params["cursor"] = page["next_cursor"]


def messages(lines: list[dict]) -> list[str]:
    return [line["message"] for line in lines]


def epochs_of(events: list[dict], run_id: str) -> list[int]:
    return [
        e["data"]["data"]["epoch"]
        for e in events
        if e["event"] == "training.run.progressed" and e["data"]["data"]["run_id"] == run_id
    ]


async def test_a_run_of_everything_labelled_trains_evaluates_exports_and_registers_a_version(
    api: aiohttp.ClientSession, project: str, settings
) -> None:
    run = await start(api, project, family="detection", model="detector")
    assert (run["state"], run["model"], run["epochs"], run["config"]["image_size"]) == ("QUEUED", "detector", 2, 64)
    run = await done(api, project, run)
    assert run["state"] == "SUCCEEDED", run
    assert run["epoch"] == 2 and run["version_id"] and set(run["metrics"]) >= {"map50", "map50_95"}

    # Lineage: the run cut a release of the labelset as it was, and the version names it.
    release = await call(api, "GET", f"{project}/releases/{run['release_id']}")
    assert release["state"] == "SUCCEEDED" and release["name"] == f"training run {run['id']}"
    assert release["labelsets"] == ["ground-truth"]
    (version,) = (await call(api, "GET", f"{project}/models/detector/versions"))["items"]
    assert version["id"] == run["version_id"] and version["version"] == 1 and version["active"]
    assert (version["run_id"], version["release_id"], version["family"]) == (run["id"], release["id"], "detection")
    assert version["classes"] == list(synth.SHAPES) and version["tag_groups"] == []
    assert version["metrics"] == run["metrics"] and {c["name"] for c in version["per_class"]} == set(synth.SHAPES)
    assert version["training_samples"] + version["validation_samples"] == IMAGES
    assert version["validation_samples"] == IMAGES // 5
    assert 0 <= version["onnx_max_abs_diff"] <= 1e-4 and version["code_version"]
    assert version["config"] == run["config"]
    model = await call(api, "GET", f"{project}/models/detector")
    assert (model["versions"], model["latest_version"], model["active_version"]) == (1, 1, 1)
    assert model["triton_model"] == version["triton_model"]

    # Triton's layout in the models bucket; the checkpoint is gone once the run is done.
    storage = Storage(settings)
    try:
        name = version["triton_model"]
        for key in (f"{name}/config.pbtxt", f"{name}/1/model.onnx", f"{name}/1/model.py"):
            assert await storage.exists("models", key), key
        assert await storage.exists("models", object_keys.model_weights(name, 1))  # for runs to start from
        assert not await storage.exists("models", object_keys.training_checkpoint(run["id"]))
    finally:
        await storage.close()

    # Each epoch and state change reached the project's event stream.
    events = await project_events(api, project, run_finished(run["id"]))
    assert epochs_of(events, run["id"]) == [1, 2]
    progressed = next(e["data"]["data"] for e in events if e["event"] == "training.run.progressed")
    assert progressed["epochs"] == 2 and progressed["loss"] > 0 and progressed["images_per_s"] > 0
    assert progressed["eta_s"] >= 0 and "map50" in progressed["metrics"]
    states = [e["data"]["data"]["state"] for e in events
              if e["event"] == "training.run.changed" and e["data"]["data"]["id"] == run["id"]]
    assert states == ["QUEUED", "RUNNING", "SUCCEEDED"]
    created = [e for e in events if e["event"] == "training.version.created"]
    assert [e["data"]["data"]["id"] for e in created] == [version["id"]]


async def test_a_finished_runs_log_holds_its_steps_in_order_a_page_at_a_time(
    api: aiohttp.ClientSession, project: str
) -> None:
    """The log of the module's first run (the detector's)."""
    (run,) = [r for r in (await call(api, "GET", f"{project}/training/runs"))["items"] if r["model"] == "detector"]
    lines = await run_log(api, project, run["id"])
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert {line["level"] for line in lines} == {"info"}
    assert [line["at"] for line in lines] == sorted(line["at"] for line in lines)
    steps = [
        "started training 'detector' (detection) from release ",
        "downloaded 60 images",
        "read the release: 48 training and 12 validation samples for detection; 0 left out",
        "training small model on ",
        "epoch 1/2: ",
        "epoch 2/2: ",
        "evaluated the best model on 12 validation samples: ",
        "exported ONNX",
        "publishing version 1",
        "succeeded: version 1 of model 'detector'",
    ]
    said = messages(lines)
    assert len(said) == len(steps) and all(m.startswith(step) for m, step in zip(said, steps, strict=True)), said
    assert "map50 " in said[4] and "images/s" in said[4] and "s waiting for data" in said[4]
    assert "outputs heatmap, size, offset, embedding)" in said[7]
    assert "onnxruntime's outputs differ from torch's by at most" in said[7]

    # A page at a time: the same lines; the last page of a finished run has no next cursor.
    assert await run_log(api, project, run["id"], limit=3) == lines
    page = await call(api, "GET", f"{project}/training/runs/{run['id']}/log", params={"limit": 4})
    assert page["items"] == lines[:4] and page["next_cursor"]
    rest = await call(api, "GET", f"{project}/training/runs/{run['id']}/log", params={"cursor": page["next_cursor"]})
    assert rest["items"] == lines[4:] and rest["next_cursor"] is None
    for params in ({"limit": 0}, {"limit": 1001}, {"cursor": "not a cursor"}):
        await call(api, "GET", f"{project}/training/runs/{run['id']}/log", 422, params=params)


@pytest.mark.parametrize(("family", "metric"), [("tagging", "accuracy"), ("classification", "accuracy"),
                                                ("segmentation", "miou")])
async def test_each_task_family_trains_from_a_release(
    api: aiohttp.ClientSession, project: str, family: str, metric: str, unique: str
) -> None:
    release = await call(api, "POST", f"{project}/releases", 201, json={"name": f"{family} {unique}"})
    run = await start(api, project, family=family, release_id=release["id"], config={"epochs": 1})
    run = await done(api, project, run)
    assert run["state"] == "SUCCEEDED", run
    assert run["release_id"] == release["id"] and metric in run["metrics"]
    version = await call(api, "GET", f"{project}/models/{family}/versions/1")
    expected = {
        "tagging": [f"{group}/{value}" for group, values in synth.TAG_GROUPS for value in values],
        "classification": list(synth.WEATHER),  # the first SINGLE tag group
        "segmentation": list(synth.SHAPES),
    }[family]
    assert version["classes"] == expected and version["active"]
    # A tagger's heads in order (what `tag<i>_logits` chose from); a classifier's one group; the others none.
    heads = {
        "tagging": [{"name": group, "values": list(values)} for group, values in synth.TAG_GROUPS],
        "classification": [{"name": "weather", "values": list(synth.WEATHER)}],
        "segmentation": [],
    }[family]
    assert version["tag_groups"] == heads


async def test_a_run_starts_from_another_versions_weights_and_its_version_names_them(
    api: aiohttp.ClientSession, project: str, settings
) -> None:
    """From the detector the module's first test trained: its backbone and neck start the tagger."""
    pretrained = {"model": "detector", "version": 1}
    run = await start(api, project, family="tagging", model="from-detector", pretrained=pretrained,
                      config={"epochs": 1})
    assert run["pretrained"] == pretrained
    run = await done(api, project, run)
    assert run["state"] == "SUCCEEDED", run
    version = await call(api, "GET", f"{project}/models/from-detector/versions/1")
    assert version["pretrained"] == pretrained and "accuracy" in version["metrics"]
    assert "starting from the weights of version 1 of model 'detector'" in messages(
        await run_log(api, project, run["id"])
    )
    detector = await call(api, "GET", f"{project}/models/detector/versions/1")
    assert detector["pretrained"] is None

    # The trainer really reads the version's file: one that is not torch's fails the run that starts from it.
    storage = Storage(settings)
    try:
        weights = object_keys.model_weights(version["triton_model"], 1)
        await storage.put_bytes("models", weights, b"not torch", "application/octet-stream")
    finally:
        await storage.close()
    run = await start(api, project, family="tagging", model="from-junk",
                      pretrained={"model": "from-detector", "version": 1}, config={"epochs": 1})
    run = await done(api, project, run)
    assert run["state"] == "FAILED" and "pretrained is not a training checkpoint" in run["error"], run
    last = (await run_log(api, project, run["id"]))[-1]
    assert last["level"] == "error" and last["message"] == f"failed: {run['error']}", last


async def test_a_cancelled_run_stops_within_5_s(api: aiohttp.ClientSession, project: str, stack: Stack) -> None:
    run = await start(api, project, family="tagging", model="cancelled", config={"epochs": 500})

    async def training() -> dict:
        seen = await call(api, "GET", f"{project}/training/runs/{run['id']}")
        assert seen["state"] == "RUNNING" and seen["epoch"] >= 1, seen
        return seen

    await eventually(training, timeout=120, interval=0.2)
    # A running run's log always names where its next lines will be: a client follows it with that cursor.
    log = f"{project}/training/runs/{run['id']}/log"
    following = await call(api, "GET", log)
    assert following["next_cursor"] and "epoch 1/500: " in "".join(messages(following["items"]))
    # The service trains in a child process: its health and readiness answer meanwhile.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as probe:
        for check in ("healthz", "readyz"):
            async with probe.get(f"http://127.0.0.1:{stack.ports.training}/{check}") as response:
                assert response.status == 200, await response.text()
    asked = await call(api, "POST", f"{project}/training/runs/{run['id']}/cancel")
    assert asked["cancel_requested"] and asked["state"] == "RUNNING"
    stopped = await done(api, project, run, timeout=5)
    assert stopped["state"] == "CANCELLED" and stopped["version_id"] is None
    await asyncio.sleep(1.5)  # a trainer left running would record its next epoch by now
    assert (await call(api, "GET", f"{project}/training/runs/{run['id']}"))["epoch"] == stopped["epoch"]
    problem = await call(api, "POST", f"{project}/training/runs/{run['id']}/cancel", 409)
    assert "CANCELLED" in problem["detail"]
    rest = await call(api, "GET", log, params={"cursor": following["next_cursor"]})
    assert rest["next_cursor"] is None and rest["items"][0]["seq"] == following["items"][-1]["seq"] + 1
    said = [m for m in messages(rest["items"]) if not m.startswith("epoch ")]
    assert said == [f"cancel requested by {asked['created_by']}; stopping the trainer", "cancelled"], said

    queued = await start(api, project, family="tagging", model="cancelled", config={"epochs": 500})
    cancelled = await call(api, "POST", f"{project}/training/runs/{queued['id']}/cancel")
    if cancelled["state"] != "CANCELLED":  # its job had already started
        cancelled = await done(api, project, queued, timeout=5)
    assert cancelled["state"] == "CANCELLED"


async def interrupted_and_resumed(api: aiohttp.ClientSession, project: str, model: str, interrupt) -> list[str]:
    """A run interrupted by `interrupt()` after its second epoch resumes from its checkpoint and completes;
    what its log says."""
    run = await start(api, project, family="tagging", model=model, config={"epochs": 20})

    async def past_epoch_two() -> dict:
        seen = await call(api, "GET", f"{project}/training/runs/{run['id']}")
        assert seen["epoch"] >= 2 and seen["state"] == "RUNNING", seen
        return seen

    before = await eventually(past_epoch_two, timeout=120, interval=0.1)
    await interrupt()
    run = await done(api, project, run, timeout=240)
    assert run["state"] == "SUCCEEDED" and run["resumed"] == 1 and run["epoch"] == 20, run
    epochs = epochs_of(await project_events(api, project, run_finished(run["id"])), run["id"])
    # The epoch count continued from the checkpoint: never back to 1, never an epoch twice.
    assert epochs == sorted(set(epochs)) and epochs[0] == 1 and epochs[-1] == 20, epochs
    assert before["epoch"] in epochs
    said = messages(await run_log(api, project, run["id"]))
    assert "started again (resume 1) after its last attempt stopped" in said, said
    assert any(m.startswith("resuming from its checkpoint (") for m in said), said
    assert said[-1] == f"succeeded: version 1 of model {model!r}", said
    return said


async def test_a_killed_training_process_resumes_from_its_checkpoint(
    api: aiohttp.ClientSession, project: str, stack: Stack
) -> None:
    async def kill() -> None:
        killed = stack.pids()["training"]
        os.kill(killed, signal.SIGKILL)  # its trainer dies with it; the stack starts the service again

        async def restarted() -> bool:
            assert stack.pids().get("training") not in (None, killed)
            return True

        await eventually(restarted, timeout=30, interval=0.1)

    await interrupted_and_resumed(api, project, "resumed", kill)


async def test_a_stopping_training_service_hands_its_run_back_at_once(
    api: aiohttp.ClientSession, project: str, stack: Stack
) -> None:
    async def stop_and_start() -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            await asyncio.to_thread(stack.stop_service, "training")
            # Not the 20 s grace of a process that waits for its run: the trainer stops, the job goes back.
            assert loop.time() - began < 10
        finally:
            if "training" not in stack.pids():
                await asyncio.to_thread(stack.start_service, "training")

    said = await interrupted_and_resumed(api, project, "handed-back", stop_and_start)
    assert any(m.startswith("the training service is stopping: handed back after epoch ") for m in said), said


async def test_the_registry_activates_and_deletes_versions(
    api: aiohttp.ClientSession, project: str, unique: str, settings
) -> None:
    release = await call(api, "POST", f"{project}/releases", 201, json={"name": f"registry {unique}"})
    for _ in range(2):
        run = await start(api, project, family="detection", model="registry", release_id=release["id"],
                          config={"epochs": 1})
        assert (await done(api, project, run))["state"] == "SUCCEEDED"
    models = f"{project}/models/registry"
    first, second = [await call(api, "GET", f"{models}/versions/{n}") for n in (1, 2)]
    assert not second["active"]  # only a project's first version of a family is activated by itself

    storage = Storage(settings)
    try:
        # Triton's configuration of the model serves the active version.
        for number, other in ((1, 2), (2, 1)):
            activated = await call(api, "PUT", f"{models}/active-version", json={"version": number})
            assert activated["active"] and activated["version"] == number
            assert not (await call(api, "GET", f"{models}/versions/{other}"))["active"]
            config = await storage.get_bytes("models", f"{first['triton_model']}/config.pbtxt")
            assert f"versions: [ {number} ]" in config.decode()
    finally:
        await storage.close()
    assert (await call(api, "GET", models))["active_version"] == 2
    problem = await call(api, "DELETE", f"{models}/versions/2", 409, params={"weights_only": "true"})
    assert problem["path"] == "query.weights_only"

    await call(api, "DELETE", f"{models}/versions/1", 204, params={"weights_only": "true"})
    kept = await call(api, "GET", f"{models}/versions/1")
    assert kept["weights_deleted"] and kept["metrics"] == first["metrics"]
    name = first["triton_model"]
    storage = Storage(settings)
    try:
        assert not await storage.exists("models", f"{name}/1/model.onnx")
        assert not await storage.exists("models", object_keys.model_weights(name, 1))
        assert await storage.exists("models", f"{name}/2/model.onnx")
        assert await storage.exists("models", object_keys.model_weights(name, 2))
    finally:
        await storage.close()
    problem = await call(api, "PUT", f"{models}/active-version", 409, json={"version": 1})
    assert problem["path"] == "$.version"
    no_weights = {"family": "tagging", "pretrained": {"model": "registry", "version": 1}}
    problem = await call(api, "POST", f"{project}/training/runs", 422, json=no_weights)
    assert problem["path"] == "$.pretrained" and "no weights" in problem["detail"], problem

    await call(api, "DELETE", f"{models}/versions/1", 204)
    await call(api, "GET", f"{models}/versions/1", 404)
    assert [v["version"] for v in (await call(api, "GET", f"{models}/versions"))["items"]] == [2]
    await call(api, "DELETE", models, 204)
    await call(api, "GET", models, 404)
    assert "registry" not in {m["name"] for m in (await call(api, "GET", f"{project}/models"))["items"]}
    storage = Storage(settings)
    try:
        assert not await storage.exists("models", object_keys.model_weights(name, 2))
    finally:
        await storage.close()


async def test_invalid_configurations_and_runs_are_refused_with_the_field(
    api: aiohttp.ClientSession, project: str, user_client, unique: str
) -> None:
    config = f"{project}/training/config"
    for body, path in (({"epochs": 0}, "$.epochs"), ({"image_size": 33}, "$.image_size"),
                       ({"learning_rate": -1}, "$.learning_rate"), ({"device": "tpu"}, "$.device"),
                       ({"epoch": 3}, "$")):
        problem = await call(api, "PUT", config, 422, json=body)
        assert problem["path"] == path, (body, problem)
    assert (await call(api, "GET", config))["config"]["epochs"] == QUICK["epochs"]

    runs = f"{project}/training/runs"
    for body, path in (
        ({"family": "detection", "config": {"batch_size": 0}}, "$.config.batch_size"),
        ({"family": "regression"}, "$.family"),
        ({"family": "detection", "model": "Has Spaces"}, "$.model"),
        ({"family": "detection", "release_id": "00000000-0000-0000-0000-000000000000"}, "$.release_id"),
        ({"family": "detection", "tag_group": "weather"}, "$.tag_group"),
        ({"family": "classification", "tag_group": "nope"}, "$.tag_group"),
        ({"family": "tagging", "model": "detector"}, "$.model"),  # a detection model already
        ({"family": "detection", "labelset": "no-such-labelset"}, "$.labelset"),
        ({"family": "tagging", "pretrained": {"model": "nope", "version": 1}}, "$.pretrained.model"),
        ({"family": "tagging", "pretrained": {"model": "detector", "version": 99}}, "$.pretrained.version"),
        ({"family": "tagging", "pretrained": {"model": "detector", "version": 0}}, "$.pretrained.version"),
        # The detector is small; weights of one size do not fit a model of another.
        ({"family": "tagging", "pretrained": {"model": "detector", "version": 1}, "config": {"model_size": "medium"}},
         "$.pretrained"),
    ):
        problem = await call(api, "POST", runs, 422, json=body)
        assert problem["path"] == path, (body, problem)
    assert "small" in problem["detail"] and "medium" in problem["detail"], problem

    await call(api, "GET", f"{runs}/00000000-0000-0000-0000-000000000000", 404)
    await call(api, "GET", f"{runs}/00000000-0000-0000-0000-000000000000/log", 404)
    await call(api, "GET", f"{runs}/not-a-run/log", 404)
    await call(api, "GET", f"{project}/models/nope", 404)
    await call(api, "GET", f"{project}/models/detector/versions/99", 404)
    _, viewer = await user_client(project.rsplit("/", 1)[1], "viewer")
    some_run = (await call(viewer, "GET", runs))["items"][0]
    assert (await call(viewer, "GET", f"{runs}/{some_run['id']}/log"))["items"]
    await call(viewer, "POST", runs, 403, json={"family": "detection"})
    await call(viewer, "PUT", config, 403, json={})


async def test_a_release_without_both_splits_fails_the_run_at_once(api: aiohttp.ClientSession, unique: str) -> None:
    empty = f"/v1/projects/{(await create(api, f'untrained {unique}'))['id']}"
    await call(api, "POST", f"{empty}/label-classes", 201, json={"name": "car"})
    run = await done(api, empty, await start(api, empty, family="detection"), timeout=30)
    assert run["state"] == "FAILED" and "0 training and 0 validation samples" in run["error"], run
    assert run["epoch"] == 0 and run["version_id"] is None
    lines = await run_log(api, empty, run["id"])
    assert [(line["level"], line["message"]) for line in lines[1:]] == [("error", f"failed: {run['error']}")], lines


async def test_deleting_the_project_deletes_its_models_and_their_files(
    api: aiohttp.ClientSession, project: str, settings
) -> None:
    """Last in the module: it deletes the module's project."""
    run = await done(api, project, await start(api, project, family="tagging", model="doomed", config={"epochs": 1}))
    assert run["state"] == "SUCCEEDED", run
    name = (await call(api, "GET", f"{project}/models/doomed"))["triton_model"]
    await call(api, "DELETE", project, 204)
    storage = Storage(settings)
    try:
        async def gone() -> bool:
            assert not await storage.exists("models", f"{name}/1/model.onnx")
            assert not await storage.exists("models", f"{name}/config.pbtxt")
            assert not await storage.exists("models", object_keys.model_weights(name, 1))
            return True

        await eventually(gone, timeout=30, interval=0.2)
    finally:
        await storage.close()
