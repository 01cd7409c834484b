"""Every subject on the bus and the message types it carries.

- Commands: core NATS request/reply, `loupe.<service>.<resource>.<verb>`, queue group = service.
- Events: JetStream stream EVENTS_STREAM, `loupe.evt.<service>.<resource>.<past-tense-verb>`,
  each body an `EventEnvelope` whose `data` has the listed type.
- Jobs: JetStream work-queue stream JOBS_STREAM, `loupe.job.<service>.<kind>`.
"""

from __future__ import annotations

from typing import NamedTuple

from proto import catalog, common

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

SERVICES = ("gateway", "catalog", "annotation", "ingest", "training", "inference")
WORKER_SERVICES = SERVICES[1:]

COMMANDS: tuple[Command, ...] = (
    VERIFY_API_KEY, CREATE_PROJECT, LIST_PROJECTS, GET_PROJECT, UPDATE_PROJECT, DELETE_PROJECT,
    *(c for s in WORKER_SERVICES for c in dead_letter_commands(s)),
    *(info_command(s) for s in SERVICES),
)
EVENTS: tuple[Event, ...] = (PROJECT_CREATED, PROJECT_UPDATED, PROJECT_DELETED)
JOBS: tuple[Job, ...] = ()
