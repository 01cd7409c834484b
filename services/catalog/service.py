"""The catalog service: what it answers on the bus and what it does at start-up."""

from __future__ import annotations

from pathlib import Path

from proto import subjects
from services.catalog import apikeys, projects
from shared.service import Service

service = Service("catalog", migrations=Path(__file__).parent / "migrations")
service.on_startup(apikeys.bootstrap_admin_key)
service.command(subjects.VERIFY_API_KEY)(apikeys.verify)
service.command(subjects.CREATE_PROJECT)(projects.create)
service.command(subjects.LIST_PROJECTS)(projects.list_page)
service.command(subjects.GET_PROJECT)(projects.get)
service.command(subjects.UPDATE_PROJECT)(projects.update)
service.command(subjects.DELETE_PROJECT)(projects.delete)
