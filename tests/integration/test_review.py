"""Review work end to end: the label and review queues (one sample per caller, by assignment and
priority, under a lock that expires) and issues with comments on samples."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

from tests.helpers import Project, add, call, dataset, eventually, items, make_project


class Queues:
    """A project whose "queue" dataset holds samples of the given priorities, known to annotation."""

    def __init__(self, project: Project, dataset_id: str, samples: list[str]) -> None:
        self.project = project
        self.dataset_id = dataset_id
        self.samples = samples  # in the order of the priorities given

    async def next(self, client: aiohttp.ClientSession, queue: str = "label", status: int = 200) -> dict | None:
        reply = await call(client, "POST", f"{self.project.path}/queues/{queue}/next", status,
                           json={"dataset_id": self.dataset_id})
        return reply["assignment"] if status == 200 else reply

    async def release(self, client: aiohttp.ClientSession, sample: str, status: int = 204) -> None:
        await call(client, "DELETE", f"{self.project.path}/samples/{sample}/locks/ground-truth", status)

    async def status(self, sample: str) -> str:
        return (await call(self.project.api, "GET", self.project.label(sample)))["status"]

    async def set_status(self, client: aiohttp.ClientSession, sample: str, status: str) -> None:
        await call(client, "PATCH", self.project.label(sample), json={"status": status})

    async def first_for(self, client: aiohttp.ClientSession, sample: str) -> dict:
        """Ask until `sample` comes first (annotation learns of assignments from the catalog's
        events), giving back whatever else came first meanwhile."""
        async def comes_first() -> dict:
            got = await self.next(client)
            if got is not None and got["sample_id"] != sample:
                await self.release(client, got["sample_id"])
            assert got is not None and got["sample_id"] == sample, f"{got} came first, not sample {sample}"
            return got
        return await eventually(comes_first)


async def make_queues(api: aiohttp.ClientSession, unique: str, priorities: list[float]) -> Queues:
    project = await make_project(api, unique, samples=1)
    made = await dataset(api, project.id, "queue")
    new = [{**item, "priority": p} for item, p in zip(items(len(priorities), f"queue-{unique}"), priorities, strict=True)]
    samples = [item["id"] for item in (await add(api, project.id, made["id"], new))["items"]]
    for sample in samples:  # reading a label makes annotation fetch a sample whose event is still on its way
        await call(api, "GET", project.label(sample))
    return Queues(project, made["id"], samples)


async def test_labelers_asking_at_once_get_different_samples(api: aiohttp.ClientSession, unique: str,
                                                             user_client) -> None:
    queues = await make_queues(api, unique, [1, 5, 3, 4, 2])
    clients = [(await user_client(queues.project.id, "labeler"))[1] for _ in range(4)]
    handed = await asyncio.gather(*(queues.next(client) for client in clients))
    assert len({a["sample_id"] for a in handed}) == 4
    assert {a["sample_id"] for a in handed} == {queues.samples[i] for i in (1, 2, 3, 4)}
    assert all(a["status"] == "LABELING_IN_PROGRESS" and a["queue"] == "label" for a in handed)
    assert await queues.status(handed[0]["sample_id"]) == "LABELING_IN_PROGRESS"
    # Asking again resumes the sample one holds.
    assert await queues.next(clients[0]) == handed[0]


async def test_one_labeler_works_through_the_queue_by_priority(api: aiohttp.ClientSession, unique: str,
                                                                user_client) -> None:
    queues = await make_queues(api, unique, [1, 5, 3, 4, 2])
    _, labeler = await user_client(queues.project.id, "labeler")
    order = []
    while (got := await queues.next(labeler)) is not None:
        order.append(got["sample_id"])
        # Writing the label ends the lock: the next call hands out another sample.
        await call(labeler, "PUT", queues.project.label(got["sample_id"]), json={"status": "LABELED"})
    assert order == [queues.samples[i] for i in (1, 3, 2, 4, 0)]


async def test_samples_assigned_to_the_caller_come_first(api: aiohttp.ClientSession, unique: str,
                                                         user_client) -> None:
    queues = await make_queues(api, unique, [3, 2, 1])
    mine_id, mine = await user_client(queues.project.id, "labeler")
    theirs_id, theirs = await user_client(queues.project.id, "labeler")
    _, other = await user_client(queues.project.id, "labeler")
    path = f"{queues.project.path}/samples"
    await call(api, "PATCH", f"{path}/{queues.samples[2]}", json={"labeler_id": mine_id})
    await call(api, "PATCH", f"{path}/{queues.samples[0]}", json={"labeler_id": theirs_id})
    # The lowest priority comes first for the one it is assigned to.
    for client, sample in ((mine, queues.samples[2]), (theirs, queues.samples[0])):
        await queues.first_for(client, sample)
        await queues.release(client, sample)
    # Samples assigned to someone else are skipped, even when nobody holds them (once annotation has
    # the assignment from the catalog's event).
    await queues.first_for(other, queues.samples[1])
    await call(other, "PUT", queues.project.label(queues.samples[1]), json={"status": "LABELED"})
    assert await queues.next(other) is None


async def test_release_puts_the_label_back_and_review_hands_out_labeled_samples(
        api: aiohttp.ClientSession, unique: str, user_client) -> None:
    queues = await make_queues(api, unique, [2, 1])
    top, low = queues.samples
    _, labeler = await user_client(queues.project.id, "labeler")
    _, reviewer = await user_client(queues.project.id, "reviewer")
    _, viewer = await user_client(queues.project.id, "viewer")
    await queues.next(viewer, status=403)
    await queues.next(labeler, "review", status=403)
    await call(labeler, "POST", f"{queues.project.path}/queues/later/next", 404, json={})

    got = await queues.next(labeler)
    assert got["sample_id"] == top and await queues.status(top) == "LABELING_IN_PROGRESS"
    await queues.release(reviewer, top, status=403)  # someone else's lock: only managers may release it
    await queues.release(labeler, top)
    assert await queues.status(top) == "UNLABELED"
    await queues.release(labeler, top)  # nothing held: nothing to do

    # Only LABELED samples wait for review.
    assert await queues.next(reviewer, "review") is None
    await call(labeler, "PUT", queues.project.label(low), json={"status": "LABELED"})
    review = await queues.next(reviewer, "review")
    assert review["sample_id"] == low and review["status"] == "REVIEWING_IN_PROGRESS"
    await queues.release(api, low)  # managers may release anyone's
    assert await queues.status(low) == "LABELED"

    # A rejected sample goes back to labeling, and back to REJECTED when given back.
    assert (await queues.next(reviewer, "review"))["sample_id"] == low
    await queues.set_status(reviewer, low, "REJECTED")
    assert await queues.next(reviewer, "review") is None
    await queues.set_status(labeler, top, "SKIPPED")
    assert (await queues.next(labeler))["sample_id"] == low
    await queues.release(labeler, low)
    assert await queues.status(low) == "REJECTED"


async def test_an_expired_lock_hands_the_sample_out_again(api: aiohttp.ClientSession, unique: str,
                                                          user_client) -> None:
    queues = await make_queues(api, unique, [1])
    _, first = await user_client(queues.project.id, "labeler")
    _, second = await user_client(queues.project.id, "labeler")
    held = await queues.next(first)
    assert await queues.next(second) is None
    taken = await eventually(lambda: queues.next(second), interval=0.2)  # once the lock expired
    assert taken["sample_id"] == held["sample_id"] and taken["expires_at"] > held["expires_at"]
    await queues.release(first, held["sample_id"], status=403)  # it is the second's now
    await queues.release(second, held["sample_id"])
    assert await queues.status(held["sample_id"]) == "UNLABELED"


async def test_issues_and_comments(api: aiohttp.ClientSession, unique: str, user_client) -> None:
    project = await make_project(api, unique, samples=2)
    first, second = project.samples
    _, labeler = await user_client(project.id, "labeler")
    _, viewer = await user_client(project.id, "viewer")
    car = (await call(api, "PUT", project.label(first), json={"objects": [project.box(1, 1, 50, 50)]}))["objects"][0]
    await call(api, "POST", f"{project.path}/labelsets", 201, json={"name": "model"})
    issues = f"{project.path}/samples/{first}/issues"

    on_object = await call(labeler, "POST", issues, 201, json={"description": "box too loose", "object_id": car["id"]})
    assert on_object["labelset"] == "ground-truth" and on_object["status"] == "OPEN" and on_object["comments"] == []
    on_sample = await call(labeler, "POST", f"{project.path}/samples/{second}/issues", 201,
                           json={"description": "blurry", "labelset": "model"})
    await call(viewer, "POST", issues, 403, json={"description": "no"})
    for body, path in (({"object_id": car["id"], "labelset": "model"}, "$.object_id"),
                       ({"object_id": str(uuid.uuid4())}, "$.object_id"),
                       ({"object_id": "car"}, "$.object_id"),
                       ({"labelset": "nope"}, "$.labelset")):
        problem = await call(labeler, "POST", issues, 422, json={"description": "x", **body})
        assert problem["path"] == path, problem
    problem = await call(labeler, "POST", f"{project.path}/samples/{second}/issues", 422,
                         json={"description": "x", "object_id": car["id"]})
    assert problem["path"] == "$.object_id"
    await call(labeler, "POST", f"{project.path}/samples/{uuid.uuid4()}/issues", 404, json={"description": "x"})
    await call(labeler, "POST", issues, 422, json={"description": "   "})

    commented = await call(labeler, "POST", f"{project.path}/issues/{on_object['id']}/comments", 201,
                           json={"text": "tightened it"})
    assert [c["text"] for c in commented["comments"]] == ["tightened it"]
    closed = await call(labeler, "PATCH", f"{project.path}/issues/{on_object['id']}", json={"status": "CLOSED"})
    assert closed["status"] == "CLOSED" and closed["description"] == "box too loose" and closed["comments"]
    assert await call(viewer, "GET", f"{project.path}/issues/{on_object['id']}") == closed

    listed = await call(viewer, "GET", f"{project.path}/issues")
    assert [i["id"] for i in listed["items"]] == [on_sample["id"], on_object["id"]]
    assert listed["items"][1]["comments"] == closed["comments"]
    page = await call(viewer, "GET", f"{project.path}/issues", params={"limit": 1})
    assert [i["id"] for i in page["items"]] == [on_sample["id"]]
    rest = await call(viewer, "GET", f"{project.path}/issues", params={"limit": 1, "cursor": page["next_cursor"]})
    assert [i["id"] for i in rest["items"]] == [on_object["id"]] and rest["next_cursor"] is None
    for params, expected in (({"status": "OPEN"}, [on_sample["id"]]), ({"sample_id": first}, [on_object["id"]])):
        found = await call(viewer, "GET", f"{project.path}/issues", params=params)
        assert [i["id"] for i in found["items"]] == expected

    await call(labeler, "DELETE", f"{project.path}/issues/{on_sample['id']}", 403)
    await call(api, "DELETE", f"{project.path}/issues/{on_sample['id']}", 204)
    await call(viewer, "GET", f"{project.path}/issues/{on_sample['id']}", 404)
    await call(labeler, "POST", f"{project.path}/issues/{on_sample['id']}/comments", 404, json={"text": "late"})
    await call(viewer, "GET", f"{project.path}/issues/not-an-id", 404)
