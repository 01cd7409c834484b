"""The real `hasty` SDK's bucket calls against Loupe's Hasty dialect: bucket credentials, and an image from one.

Reads HASTY_BASE_URL, HASTY_API_KEY and, for the S3 that holds `<prefix>/<seed>.jpg` images, BUCKET_ENDPOINT
(host:port, plain HTTP), BUCKET_NAME, BUCKET_KEY (an object in it), BUCKET_ACCESS_KEY and BUCKET_SECRET_KEY.
Loupe reads S3 with access keys, not cloud roles, so the credentials are a class of the script's own that gives
the SDK Loupe's fields (the SDK takes any object with `get_credentials` and `cloud_provider`). Prints one JSON
line of what it saw, last.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import dataclass

from hasty import Client
from hasty.bucket import S3Creds
from hasty.exception import ValidationException


@dataclass
class LoupeS3Creds:
    """Loupe's S3 credentials: an endpoint and access keys, kept by a project."""

    project_id: str
    bucket: str
    endpoint: str
    access_key: str
    secret_key: str

    def get_credentials(self) -> dict:
        return {"cloud_provider": "s3", "bucket_s3": self.bucket, "endpoint": self.endpoint, "secure": False,
                "access_key": self.access_key, "secret_key": self.secret_key, "project_id": self.project_id}

    def cloud_provider(self) -> str:
        return "s3"


def log(*parts: object) -> None:
    print("hasty_bucket_flow:", *parts, file=sys.stderr, flush=True)


def main() -> None:
    env = os.environ
    client = Client(api_key=env["HASTY_API_KEY"], base_url=env["HASTY_BASE_URL"])
    workspace = client.get_workspaces()[0]
    project = client.create_project(workspace, f"bucket flow {uuid.uuid4().hex[:8]}")
    dataset = project.create_dataset("frames")
    seen: dict[str, object] = {}
    try:
        workspace.create_bucket("with a role", S3Creds(bucket=env["BUCKET_NAME"], role="arn:aws:iam::1:role/hasty"))
        seen["role_refused"] = None
    except ValidationException as error:
        seen["role_refused"] = error.message
    creds = LoupeS3Creds(project.id, env["BUCKET_NAME"], env["BUCKET_ENDPOINT"], env["BUCKET_ACCESS_KEY"],
                         env["BUCKET_SECRET_KEY"])
    bucket = workspace.create_bucket("dashcam", creds)
    seen["bucket"] = [bucket.name, bucket.cloud_provider, len(bucket.id)]
    log("bucket", bucket.id)
    image = project.upload_from_bucket(dataset, "from-bucket.jpg", env["BUCKET_KEY"], bucket.id, external_id="b-1")
    image = project.get_image(image.id)
    seen["image"] = [image.name, image.dataset_name, image.width, image.height]
    project.delete()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
