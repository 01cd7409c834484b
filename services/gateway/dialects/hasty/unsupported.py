"""Parts of Hasty's API Loupe does not serve through this dialect: each answers 501 with what to do instead."""

from __future__ import annotations

from services.gateway.dialects.hasty.common import PROJECT, Routes, not_implemented

NO_VIDEOS = "Loupe has no video projects: videos, their segments and activity types are not available"
WORKSPACES = "a workspace is your Loupe organisation, which Loupe's operators manage; it cannot be changed here"
REPLACE_IMAGE = (
    "an image cannot be replaced in Loupe (its id follows from its content): upload the new image and delete the old"
)
BUCKETS = (
    "Loupe keeps stored bucket keys sealed and does not change them, nor list a bucket's objects: delete the "
    "credentials and create them again (or POST /v1/projects/{project_id}/buckets natively), and import a prefix "
    "with POST .../credentials/{bucket_id}/import"
)


ROUTES: Routes = [
    *(
        ("*", f"{PROJECT}/{path}{{tail:.*}}", not_implemented(NO_VIDEOS))
        for path in ("videos", "segments", "activity_types")
    ),
    ("*", "/v1/buckets{tail:.*}", not_implemented(BUCKETS)),
    ("PUT", "/v1/workspaces/{workspace_id}", not_implemented(WORKSPACES)),
    ("PUT", PROJECT + "/images/{image_id}", not_implemented(REPLACE_IMAGE)),
]
