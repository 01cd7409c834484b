"""The catalog service: what it answers on the bus and what it does at start-up."""

from __future__ import annotations

from pathlib import Path

from proto import subjects
from services.catalog import access, apikeys, datasets, labels_summary, media, projects, samples, schema, search, views
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
for command, handler in schema.COMMAND_HANDLERS:
    service.command(command)(handler)

# -- datasets and samples
service.command(subjects.CREATE_DATASET)(datasets.create)
service.command(subjects.LIST_DATASETS)(datasets.list_page)
service.command(subjects.GET_DATASET)(datasets.get)
service.command(subjects.UPDATE_DATASET)(datasets.update)
service.command(subjects.DELETE_DATASET)(datasets.delete)
service.command(subjects.CREATE_SAMPLES)(samples.create_many)
service.command(subjects.GET_SAMPLE)(samples.get)
service.command(subjects.UPDATE_SAMPLE)(samples.update)
service.command(subjects.UPDATE_SAMPLES)(samples.update_many)
service.command(subjects.DELETE_SAMPLE)(samples.delete)
service.command(subjects.DELETE_SAMPLES)(samples.delete_many)
service.command(subjects.MOVE_SAMPLES)(samples.move)
service.command(subjects.FIND_SAMPLES)(samples.find)
service.command(subjects.LOCATE_MEDIA)(media.locate)
service.command(subjects.SIGN_MEDIA)(media.sign)
service.on_event(subjects.MEDIA_STORED)(samples.register)

# -- search and saved views
service.command(subjects.SEARCH_SAMPLES)(search.search)
service.command(subjects.CREATE_VIEW)(views.create)
service.command(subjects.LIST_VIEWS)(views.list_page)
service.command(subjects.GET_VIEW)(views.get)
service.command(subjects.UPDATE_VIEW)(views.update)
service.command(subjects.DELETE_VIEW)(views.delete)
service.command(subjects.ADD_VIEW_ITEMS)(views.add_items)
service.command(subjects.REMOVE_VIEW_ITEMS)(views.remove_items)
service.command(subjects.RUN_VIEW)(views.run)
service.on_event(subjects.LABEL_CHANGED)(labels_summary.apply_label_changed)
