"""The `hasty` SDK's automated labeling ("Finish Him") against a project with a trained model.

Reads HASTY_BASE_URL, HASTY_API_KEY, HASTY_PROJECT_ID, HASTY_EXPERIMENT_ID (a Loupe training run) and
HASTY_DATASET_ID; prints one JSON line last.
"""

from __future__ import annotations

import json
import os
import sys
import time

from hasty import Client


def main() -> None:
    client = Client(api_key=os.environ["HASTY_API_KEY"], base_url=os.environ["HASTY_BASE_URL"])
    project = client.get_project(os.environ["HASTY_PROJECT_ID"])
    job = project.create_automated_labeling_job(
        os.environ["HASTY_EXPERIMENT_ID"], confidence_threshold=0.1, dataset_id=os.environ["HASTY_DATASET_ID"]
    )
    seen: dict[str, object] = {"created": job.status, "experiment_id": job.experiment_id}
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = project.get_automated_labeling_job(job.id)
        print(f"automated labeling {job.status} {job.progress}", file=sys.stderr)
        if job.status in ("DONE", "FAILED", "CANCELLED"):
            break
        time.sleep(1)
    seen.update(id=job.id, status=job.status, progress=job.progress)
    seen["listed"] = [listed.id for listed in project.get_automated_labeling_jobs()]
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
