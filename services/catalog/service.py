"""The catalog service: what it answers on the bus and what it does at start-up."""

from __future__ import annotations

from pathlib import Path

from proto import subjects
from services.catalog import access, apikeys, projects
from shared.service import Service

service = Service("catalog", migrations=Path(__file__).parent / "migrations", buckets=("media", "thumbs"))
service.on_startup(apikeys.bootstrap_admin_key)
service.command(subjects.VERIFY_API_KEY)(apikeys.verify)

# -- projects
service.command(subjects.CREATE_PROJECT)(projects.create)
service.command(subjects.LIST_PROJECTS)(projects.list_page)
service.command(subjects.GET_PROJECT)(projects.get)
service.command(subjects.UPDATE_PROJECT)(projects.update)
service.command(subjects.DELETE_PROJECT)(projects.delete)

# -- users, API keys, roles
for command, handler in (
        (subjects.CREATE_ORG, access.create_org), (subjects.GET_ME, access.get_me),
        (subjects.CREATE_USER, access.create_user), (subjects.LIST_USERS, access.list_users),
        (subjects.GET_USER, access.get_user), (subjects.UPDATE_USER, access.update_user),
        (subjects.CREATE_API_KEY, access.create_api_key), (subjects.LIST_API_KEYS, access.list_api_keys),
        (subjects.REVOKE_API_KEY, access.revoke_api_key), (subjects.CHECK_ACCESS, access.check_access),
        (subjects.LIST_MEMBERS, access.list_members), (subjects.SET_MEMBER, access.set_member),
        (subjects.REMOVE_MEMBER, access.remove_member)):
    service.command(command)(handler)

# -- label schema

# -- datasets and samples

# -- search and saved views
