"""The `hasty` SDK with the key of a project's viewer: reads work, a change raises the SDK's permission error.

Reads HASTY_BASE_URL, HASTY_API_KEY (the viewer's) and HASTY_PROJECT_ID; prints one JSON line last.
"""

from __future__ import annotations

import json
import os

from hasty import Client
from hasty.exception import AuthorisationException


def main() -> None:
    client = Client(api_key=os.environ["HASTY_API_KEY"], base_url=os.environ["HASTY_BASE_URL"])
    project = client.get_project(os.environ["HASTY_PROJECT_ID"])
    seen: dict[str, object] = {"reads_classes": len(project.get_label_classes())}
    try:
        project.create_label_class("not allowed")
        seen["create_class"] = "created"
    except AuthorisationException:
        seen["create_class"] = "AuthorisationException"
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
