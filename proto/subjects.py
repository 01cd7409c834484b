"""Every subject on the bus and the message types it carries.

- Commands: core NATS request/reply, `loupe.<service>.<resource>.<verb>`, queue group = service.
- Events: JetStream stream EVENTS_STREAM, `loupe.evt.<service>.<resource>.<past-tense-verb>`,
  each body an `EventEnvelope` whose `data` has the listed type.
- Jobs: JetStream work-queue stream JOBS_STREAM, `loupe.job.<service>.<kind>`.
"""

from __future__ import annotations

from typing import NamedTuple

from proto import annotation, catalog, common, ingest

EVENTS_STREAM = "LOUPE_EVENTS"
EVENTS_SUBJECTS = "loupe.evt.>"
EVENT_PREFIX = "loupe.evt."
JOBS_STREAM = "LOUPE_JOBS"
JOBS_SUBJECTS = "loupe.job.>"

# NATS headers Loupe sets on commands, replies and published messages.
HEADER_REQUEST_ID = "Loupe-Request-Id"
HEADER_CALLER = "Loupe-Caller"
HEADER_ERROR = "Loupe-Error"
HEADER_MSG_ID = "Nats-Msg-Id"


class Command(NamedTuple):
    subject: str
    request: type
    reply: type
    summary: str


class Event(NamedTuple):
    subject: str
    data: type
    summary: str


class Job(NamedTuple):
    subject: str
    payload: type
    summary: str


def dead_letter_commands(service: str) -> tuple[Command, Command]:
    return (
        Command(f"loupe.{service}.deadletter.list", common.ListDeadLetters, common.DeadLetterList,
                f"List messages {service} gave up on after every delivery failed"),
        Command(f"loupe.{service}.deadletter.replay", common.ReplayDeadLetter, common.DeadLetter,
                f"Publish a dead letter of {service} again so its consumer processes it"),
    )


def info_command(service: str) -> Command:
    return Command(f"loupe.{service}.service.info", common.Empty, common.ServiceInfo,
                   f"What {service} serves: its commands and consumers")


VERIFY_API_KEY = Command("loupe.catalog.apikey.verify", catalog.VerifyApiKey, common.Caller,
                         "Resolve an API key to its caller; unknown keys answer `unauthenticated`")
CREATE_PROJECT = Command("loupe.catalog.project.create", catalog.CreateProject, catalog.Project,
                         "Create a project in the caller's organisation")
LIST_PROJECTS = Command("loupe.catalog.project.list", catalog.ListProjects, catalog.ProjectPage,
                        "List the caller's projects, oldest first, a page at a time")
GET_PROJECT = Command("loupe.catalog.project.get", catalog.ProjectRef, catalog.Project,
                      "Get one project")
UPDATE_PROJECT = Command("loupe.catalog.project.update", catalog.UpdateProjectRequest, catalog.Project,
                         "Rename a project or change its description")
DELETE_PROJECT = Command("loupe.catalog.project.delete", catalog.ProjectRef, common.Empty,
                         "Delete a project")

PROJECT_CREATED = Event("loupe.evt.catalog.project.created", catalog.Project, "A project was created")
PROJECT_UPDATED = Event("loupe.evt.catalog.project.updated", catalog.ProjectUpdated,
                        "A project was renamed or its description changed")
PROJECT_DELETED = Event("loupe.evt.catalog.project.deleted", catalog.ProjectDeleted, "A project was deleted")

# -- catalog: users, API keys, roles (proto/catalog.py) ---------------------------------------------
CREATE_ORG = Command("loupe.catalog.org.create", catalog.CreateOrg, catalog.OrgCreated,
                     "Create an organisation with its first admin user and API key (operators only)")
GET_ME = Command("loupe.catalog.me.get", common.Empty, catalog.Me, "Who the API key belongs to")
CREATE_USER = Command("loupe.catalog.user.create", catalog.CreateUser, catalog.User,
                      "Add a user to the caller's organisation")
LIST_USERS = Command("loupe.catalog.user.list", common.Empty, catalog.UserList, "List the organisation's users")
GET_USER = Command("loupe.catalog.user.get", catalog.UserRef, catalog.User, "Get one user")
UPDATE_USER = Command("loupe.catalog.user.update", catalog.UpdateUserRequest, catalog.User,
                      "Rename a user, make them an admin, or deactivate them")
CREATE_API_KEY = Command("loupe.catalog.apikey.create", catalog.CreateApiKeyRequest, catalog.ApiKey,
                         "Create an API key for a user; its secret is shown only in this reply")
LIST_API_KEYS = Command("loupe.catalog.apikey.list", catalog.UserRef, catalog.ApiKeyList, "List a user's API keys")
REVOKE_API_KEY = Command("loupe.catalog.apikey.revoke", catalog.ApiKeyRef, catalog.ApiKey, "Revoke an API key")
CHECK_ACCESS = Command("loupe.catalog.access.check", catalog.CheckAccess, catalog.ProjectAccess,
                       "The caller's role on a project, if it is at least the one asked for")
LIST_MEMBERS = Command("loupe.catalog.member.list", catalog.ProjectRef, catalog.MemberList,
                       "List who has a role on a project")
SET_MEMBER = Command("loupe.catalog.member.set", catalog.SetMemberRequest, catalog.Member,
                     "Give a user a role on a project, or change it")
REMOVE_MEMBER = Command("loupe.catalog.member.remove", catalog.MemberRef, common.Empty,
                        "Take a user's role on a project away")
MEMBER_CHANGED = Event("loupe.evt.catalog.member.changed", catalog.MemberChanged,
                       "A user's role on a project was set, changed or removed")
ACCESS_COMMANDS: tuple[Command, ...] = (CREATE_ORG, GET_ME, CREATE_USER, LIST_USERS, GET_USER, UPDATE_USER,
                                        CREATE_API_KEY, LIST_API_KEYS, REVOKE_API_KEY, CHECK_ACCESS,
                                        LIST_MEMBERS, SET_MEMBER, REMOVE_MEMBER)
ACCESS_EVENTS: tuple[Event, ...] = (MEMBER_CHANGED,)

# -- catalog: label schema (proto/schema.py) --------------------------------------------------------
SCHEMA_COMMANDS: tuple[Command, ...] = ()
SCHEMA_EVENTS: tuple[Event, ...] = ()

# -- catalog: datasets and samples (proto/samples.py) -----------------------------------------------
SAMPLE_COMMANDS: tuple[Command, ...] = ()
SAMPLE_EVENTS: tuple[Event, ...] = ()

# -- catalog: search and saved views (proto/search.py) ----------------------------------------------
SEARCH_COMMANDS: tuple[Command, ...] = ()
SEARCH_EVENTS: tuple[Event, ...] = ()

# -- annotation (proto/annotation.py) ---------------------------------------------------------------
LABEL_CHANGED = Event("loupe.evt.annotation.label.changed", annotation.LabelChanged,
                      "A sample's label in a labelset changed; carries its per-class object counts and tags")

# -- ingest (proto/ingest.py) -----------------------------------------------------------------------
MEDIA_STORED = Event("loupe.evt.ingest.media.stored", ingest.MediaStored,
                     "Ingest validated and stored images for a dataset; the catalog registers them as samples")
INGEST_COMMANDS: tuple[Command, ...] = ()
INGEST_EVENTS: tuple[Event, ...] = (MEDIA_STORED,)
INGEST_JOBS: tuple[Job, ...] = ()

SERVICES = ("gateway", "catalog", "annotation", "ingest", "training", "inference")
WORKER_SERVICES = SERVICES[1:]

COMMANDS: tuple[Command, ...] = (
    VERIFY_API_KEY, CREATE_PROJECT, LIST_PROJECTS, GET_PROJECT, UPDATE_PROJECT, DELETE_PROJECT,
    *ACCESS_COMMANDS, *SCHEMA_COMMANDS, *SAMPLE_COMMANDS, *SEARCH_COMMANDS, *INGEST_COMMANDS,
    *(c for s in WORKER_SERVICES for c in dead_letter_commands(s)),
    *(info_command(s) for s in SERVICES),
)
EVENTS: tuple[Event, ...] = (PROJECT_CREATED, PROJECT_UPDATED, PROJECT_DELETED, *ACCESS_EVENTS, *SCHEMA_EVENTS,
                             *SAMPLE_EVENTS, *SEARCH_EVENTS, LABEL_CHANGED, *INGEST_EVENTS)
JOBS: tuple[Job, ...] = (*INGEST_JOBS,)
