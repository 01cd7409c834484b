"""The real segments-ai SDK against Loupe's Segments.ai dialect: a realistic flow end to end.

Reads SEGMENTS_API_URL and SEGMENTS_API_KEY; with LOUPE_GATEWAY_URL it also makes two users through
Loupe's native API (a collaborator, and a labeler who is not one) to check roles. Prints progress on
stderr and one JSON object of what it saw as its last line of stdout.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
import urllib.request
import uuid

import requests
from PIL import Image
from segments import SegmentsClient, SegmentsDataset
from segments.exceptions import AlreadyExistsError, AuthorizationError, NetworkError, NotFoundError

API_URL = os.environ["SEGMENTS_API_URL"]
KEY = os.environ["SEGMENTS_API_KEY"]
GATEWAY = os.environ.get("LOUPE_GATEWAY_URL", "")
TOKEN = uuid.uuid4().hex[:8]
seen: dict[str, object] = {}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def native(method: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        GATEWAY.rstrip("/") + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def make_user(name: str) -> tuple[str, str]:
    """A user of the organisation and a key of theirs, through the native API."""
    user = native("POST", "/v1/users", {"name": name, "email": f"{name}@example.com"})
    key = native("POST", f"/v1/users/{user['id']}/api-keys", {"name": "segments flow"})["key"]
    return user["name"], key


def raises(kind: type[Exception], call) -> str:
    try:
        call()
    except kind as exc:
        return str(exc)
    raise AssertionError(f"expected {kind.__name__}")


def main() -> None:
    client = SegmentsClient(api_key=KEY, api_url=API_URL)
    user = client.get_user()
    seen["user"] = user.username
    say(f"user {user.username}")

    name = f"flow-{TOKEN}"
    categories = [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]
    dataset = client.add_dataset(
        name, description="made by the SDK", task_type="bboxes",
        task_attributes={"format_version": "0.1", "categories": categories},
    )
    full_name = dataset.full_name
    seen["dataset"] = {"full_name": full_name, "task_type": dataset.task_type,
                       "categories": [(c.id, c.name) for c in dataset.task_attributes.categories]}
    seen["duplicate_dataset"] = raises(AlreadyExistsError, lambda: client.add_dataset(name, task_type="bboxes"))
    say(f"dataset {full_name}")

    # Assets through the presigned POST, then samples one by one and in bulk.
    assets = [client.upload_asset(png((40 * i, 100, 200)), filename=f"img{i}.png") for i in range(4)]
    seen["asset_loads"] = Image.open(io.BytesIO(requests.get(assets[0].url, timeout=30).content)).size
    first = client.add_sample(full_name, "first.png", {"image": {"url": assets[0].url}},
                              metadata={"weather": "sunny"}, priority=5)
    second = client.add_sample(full_name, "second.png", {"image": {"url": assets[1].url}})
    bulk = client.add_samples(full_name, [{"name": f"bulk-{i}.png", "attributes": {"image": {"url": a.url}}}
                                          for i, a in enumerate(assets[2:])])
    seen["samples"] = {"first": {"name": first.name, "metadata": first.metadata, "priority": first.priority},
                       "second": second.name, "bulk": [s.name for s in bulk]}
    seen["first_uuid"] = first.uuid
    say(f"samples {first.uuid} {second.uuid} {[s.uuid for s in bulk]}")

    # Labels: add, get, update.
    box = {"format_version": "0.1", "annotations": [
        {"id": 1, "category_id": 1, "type": "bbox", "points": [[2, 3], [20, 30]]},
        {"id": 2, "category_id": 2, "type": "bbox", "points": [[10, 10], [40, 40]]},
    ]}
    added = client.add_label(first.uuid, "ground-truth", box, label_status="LABELED")
    got = client.get_label(first.uuid, "ground-truth")
    updated = client.update_label(first.uuid, "ground-truth", label_status="REVIEWED")
    client.add_label(second.uuid, "ground-truth", {"format_version": "0.1", "annotations": [
        {"id": 1, "category_id": 2, "type": "bbox", "points": [[1, 1], [5, 5]]}]}, label_status="LABELED")
    seen["label"] = {
        "added_status": added.label_status,
        "annotations": [(a.category_id, a.type, a.points) for a in got.attributes.annotations],
        "updated_status": updated.label_status,
    }
    seen["bad_label"] = raises(NetworkError, lambda: client.add_label(first.uuid, "ground-truth", {
        "format_version": "0.1", "annotations": [{"id": 1, "category_id": 99, "type": "bbox",
                                                  "points": [[0, 0], [1, 1]]}]}))
    say("labels written")

    # Listing with filters. Label filters read Loupe's search, which follows label changes by their events
    # a moment later: wait for it first.
    deadline = time.monotonic() + 20
    while [[s.name for s in client.get_samples(full_name, labelset="ground-truth", label_status=status)]
           for status in ("REVIEWED", "LABELED")] != [["first.png"], ["second.png"]]:
        assert time.monotonic() < deadline, "search never saw the labels"
        time.sleep(0.2)
    seen["list"] = {
        "all": sorted(s.name for s in client.get_samples(full_name)),
        "name": [s.name for s in client.get_samples(full_name, name="bulk")],
        "reviewed": [s.name for s in client.get_samples(full_name, labelset="ground-truth", label_status="REVIEWED")],
        "labeled_or_reviewed": sorted(s.name for s in client.get_samples(
            full_name, labelset="ground-truth", label_status=["LABELED", "REVIEWED"])),
        "page2": [s.name for s in client.get_samples(full_name, per_page=2, page=2)],
        "by_priority": [s.name for s in client.get_samples(full_name, sort="priority", direction="desc")][:1],
        "full_label": [len(s.label.attributes.annotations) for s in client.get_samples(
            full_name, labelset="ground-truth", include_full_label=True, name="first")],
    }
    seen["label_stats"] = client.get_dataset(full_name).label_stats.model_dump(exclude_none=True)

    # Collaborators, and a labeler who is not one.
    if GATEWAY:
        helper_name, helper_key = make_user(f"seg-labeler-{TOKEN}")
        outsider_name, outsider_key = make_user(f"seg-outsider-{TOKEN}")
        collaborator = client.add_dataset_collaborator(full_name, helper_name, role="labeler")
        seen["collaborator"] = [collaborator.user.username == helper_name, collaborator.role,
                                client.get_dataset_collaborator(full_name, helper_name).role]
        helper = SegmentsClient(api_key=helper_key, api_url=API_URL)
        helper.add_label(second.uuid, "ground-truth", box, label_status="LABELED")
        seen["collaborator_labels"] = len(helper.get_label(second.uuid, "ground-truth").attributes.annotations)
        outsider = SegmentsClient(api_key=outsider_key, api_url=API_URL)
        seen["outsider_private"] = raises(NotFoundError, lambda: outsider.get_dataset(full_name))
        seen["outsider_sample"] = raises(NotFoundError, lambda: outsider.get_label(first.uuid, "ground-truth"))
        client.update_dataset(full_name, public=True)
        seen["outsider_reads_public"] = outsider.get_dataset(full_name).name
        seen["outsider_label"] = raises(
            AuthorizationError, lambda: outsider.add_label(first.uuid, "ground-truth", box, label_status="LABELED"))
        say("collaborators checked")

    # A release, read with SegmentsDataset (its images load).
    client.add_release(full_name, "v1.0", description="first release")
    release = client.get_release(full_name, "v1.0")
    deadline = time.monotonic() + 120
    while release.status == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.5)
        release = client.get_release(full_name, "v1.0")
    seen["release"] = {"status": release.status, "samples": release.samples_count,
                       "listed": [r.name for r in client.get_releases(full_name)]}
    with tempfile.TemporaryDirectory() as cache:
        segments_dataset = SegmentsDataset(release, labelset="ground-truth", segments_dir=cache)
        items = [segments_dataset[i] for i in range(len(segments_dataset))]
    seen["segments_dataset"] = {
        "samples": len(items),
        "images": sorted(item["image"].size for item in items if item["image"] is not None),
        "first_annotations": next(
            [(a["category_id"], a["type"]) for a in item["annotations"]] for item in items if item["name"] == "first.png"),
        "categories": [(c.id, c.name) for c in segments_dataset.categories],
    }
    say("release read")

    # A clone with its labels.
    clone = client.clone_dataset(full_name, new_name=f"{name}-clone", clone_labels=True)
    cloned = client.get_samples(clone.full_name, labelset="ground-truth", include_full_label=True, name="first")
    seen["clone"] = {"name": clone.name, "samples": len(client.get_samples(clone.full_name)),
                     "first_annotations": [(a.category_id, a.type) for a in cloned[0].label.attributes.annotations],
                     "first_status": cloned[0].label.label_status}
    client.delete_dataset(clone.full_name)

    # Issues and labelsets.
    issue = client.add_issue(first.uuid, "the car is cut off")
    client.update_issue(issue.uuid, status="CLOSED")
    seen["issues"] = [(i.description, i.status, i.sample_name) for i in client.get_issues(full_name)]
    client.add_labelset(full_name, "review-2")
    seen["duplicate_labelset"] = raises(AlreadyExistsError, lambda: client.add_labelset(full_name, "review-2"))
    seen["labelsets"] = sorted(labelset.name for labelset in client.get_labelsets(full_name))

    # A missing dataset, then the real one deleted.
    seen["missing"] = raises(NotFoundError, lambda: client.get_dataset(f"{user.username}/no-such-{TOKEN}"))
    client.delete_dataset(full_name)
    seen["deleted"] = raises(NotFoundError, lambda: client.get_dataset(full_name))
    say("done")


if __name__ == "__main__":
    main()
    print(json.dumps(seen))
