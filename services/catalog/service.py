"""The catalog service: what it answers on the bus and what it does at start-up."""

from __future__ import annotations

from pathlib import Path

from proto import subjects
from services.catalog import access, apikeys, datasets, labels_summary, media, projects, samples, schema, search, views
from shared.service import Service

# Its events are registrations (insert if absent) and label summaries (keep the newest revision):
# neither depends on the order they are applied in, so several are applied at once.
service = Service(
    "catalog", migrations=Path(__file__).parent / "migrations", buckets=("media", "thumbs"), events_concurrency=4
)
service.on_startup(apikeys.bootstrap_admin_key)

service.answer(
    [
        (subjects.VERIFY_API_KEY, apikeys.verify),
        # -- projects
        (subjects.CREATE_PROJECT, projects.create),
        (subjects.LIST_PROJECTS, projects.list_page),
        (subjects.GET_PROJECT, projects.get),
        (subjects.UPDATE_PROJECT, projects.update),
        (subjects.DELETE_PROJECT, projects.delete),
        # -- users, API keys, roles
        (subjects.CREATE_ORG, access.create_org),
        (subjects.GET_ME, access.get_me),
        (subjects.CREATE_USER, access.create_user),
        (subjects.LIST_USERS, access.list_users),
        (subjects.GET_USER, access.get_user),
        (subjects.UPDATE_USER, access.update_user),
        (subjects.CREATE_API_KEY, access.create_api_key),
        (subjects.LIST_API_KEYS, access.list_api_keys),
        (subjects.REVOKE_API_KEY, access.revoke_api_key),
        (subjects.CHECK_ACCESS, access.check_access),
        (subjects.LIST_MEMBERS, access.list_members),
        (subjects.SET_MEMBER, access.set_member),
        (subjects.REMOVE_MEMBER, access.remove_member),
        # -- label schema
        *schema.COMMAND_HANDLERS,
        # -- datasets and samples
        (subjects.CREATE_DATASET, datasets.create),
        (subjects.LIST_DATASETS, datasets.list_page),
        (subjects.GET_DATASET, datasets.get),
        (subjects.UPDATE_DATASET, datasets.update),
        (subjects.DELETE_DATASET, datasets.delete),
        (subjects.CREATE_SAMPLES, samples.create_many),
        (subjects.GET_SAMPLE, samples.get),
        (subjects.UPDATE_SAMPLE, samples.update),
        (subjects.UPDATE_SAMPLES, samples.update_many),
        (subjects.DELETE_SAMPLE, samples.delete),
        (subjects.DELETE_SAMPLES, samples.delete_many),
        (subjects.MOVE_SAMPLES, samples.move),
        (subjects.FIND_SAMPLES, samples.find),
        (subjects.LOCATE_MEDIA, media.locate),
        (subjects.SIGN_MEDIA, media.sign),
        # -- search and saved views
        (subjects.SEARCH_SAMPLES, search.search),
        (subjects.CREATE_VIEW, views.create),
        (subjects.LIST_VIEWS, views.list_page),
        (subjects.GET_VIEW, views.get),
        (subjects.UPDATE_VIEW, views.update),
        (subjects.DELETE_VIEW, views.delete),
        (subjects.ADD_VIEW_ITEMS, views.add_items),
        (subjects.REMOVE_VIEW_ITEMS, views.remove_items),
        (subjects.RUN_VIEW, views.run),
    ]
)
# Read models and registrations fed by other services' events.
service.on_event(subjects.MEDIA_STORED)(samples.register)
service.on_event(subjects.LABEL_CHANGED)(labels_summary.apply_label_changed)
service.on_event(subjects.LABELSET_DELETED)(labels_summary.apply_labelset_deleted)
