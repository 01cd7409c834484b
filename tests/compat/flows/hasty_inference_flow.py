"""The `hasty` SDK's object detector against a project with an active detection model: discover it, then
predict one image by path (a signed upload) and the same image by URL.

Reads HASTY_BASE_URL, HASTY_API_KEY, HASTY_PROJECT_ID, HASTY_IMAGE_PATH and HASTY_IMAGE_URL (the same image);
prints one JSON line last.
"""

from __future__ import annotations

import json
import os
import sys

from hasty import Client


def main() -> None:
    client = Client(api_key=os.environ["HASTY_API_KEY"], base_url=os.environ["HASTY_BASE_URL"])
    project = client.get_project(os.environ["HASTY_PROJECT_ID"])
    detector = project.get_detector()
    print(f"detector {detector.model_id} {detector.status}", file=sys.stderr)
    by_path = detector.predict(
        image_path=os.environ["HASTY_IMAGE_PATH"], confidence_threshold=0.05, max_detections_per_image=10
    )
    print(f"by path: {len(by_path)} boxes", file=sys.stderr)
    by_url = detector.predict(
        image_url=os.environ["HASTY_IMAGE_URL"], confidence_threshold=0.05, max_detections_per_image=10
    )
    print(f"by URL: {len(by_url)} boxes", file=sys.stderr)
    seen = {"model_id": detector.model_id, "status": detector.status, "by_path": by_path, "by_url": by_url}
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
