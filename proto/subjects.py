"""Every subject on the bus and the message types it carries.

- Commands: core NATS request/reply, `loupe.<service>.<resource>.<verb>`, queue group = service.
- Events: JetStream stream EVENTS_STREAM, `loupe.evt.<service>.<resource>.<past-tense-verb>`,
  each body an `EventEnvelope` whose `data` has the listed type.
- Jobs: JetStream work-queue stream JOBS_STREAM, `loupe.job.<service>.<kind>`.
"""

from __future__ import annotations

from types import UnionType
from typing import NamedTuple

from proto import (
    annotation,
    catalog,
    common,
    embeddings,
    inference,
    ingest,
    pipelines,
    releases,
    review,
    samples,
    saved_io,
    schema,
    search,
    training,
)

EVENTS_STREAM = "LOUPE_EVENTS"
EVENTS_SUBJECTS = "loupe.evt.>"
EVENT_PREFIX = "loupe.evt."
JOBS_STREAM = "LOUPE_JOBS"
JOBS_SUBJECTS = "loupe.job.>"
# JetStream key-value bucket: project id → its label schema's version, raised by the catalog after every
# schema edit commits and before it answers; annotation reads it to know whether its copy is current.
SCHEMA_VERSIONS = "LOUPE_SCHEMA_VERSIONS"

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
    payload: type | UnionType  # a Struct, or a union of tagged Structs
    summary: str


def dead_letter_commands(service: str) -> tuple[Command, Command]:
    return (
        Command(
            f"loupe.{service}.deadletter.list",
            common.ListDeadLetters,
            common.DeadLetterList,
            f"List messages {service} gave up on after every delivery failed",
        ),
        Command(
            f"loupe.{service}.deadletter.replay",
            common.ReplayDeadLetter,
            common.DeadLetter,
            f"Publish a dead letter of {service} again so its consumer processes it",
        ),
    )


def info_command(service: str) -> Command:
    return Command(
        f"loupe.{service}.service.info",
        common.Empty,
        common.ServiceInfo,
        f"What {service} serves: its commands and consumers",
    )


VERIFY_API_KEY = Command(
    "loupe.catalog.apikey.verify",
    catalog.VerifyApiKey,
    common.Caller,
    "Resolve an API key to its caller; unknown keys answer `unauthenticated`",
)
CREATE_PROJECT = Command(
    "loupe.catalog.project.create",
    catalog.CreateProject,
    catalog.Project,
    "Create a project in the caller's organisation",
)
LIST_PROJECTS = Command(
    "loupe.catalog.project.list",
    catalog.ListProjects,
    catalog.ProjectPage,
    "List the caller's projects, oldest first, a page at a time",
)
GET_PROJECT = Command("loupe.catalog.project.get", catalog.ProjectRef, catalog.Project, "Get one project")
UPDATE_PROJECT = Command(
    "loupe.catalog.project.update",
    catalog.UpdateProjectRequest,
    catalog.Project,
    "Rename a project or change its description",
)
DELETE_PROJECT = Command("loupe.catalog.project.delete", catalog.ProjectRef, common.Empty, "Delete a project")

PROJECT_CREATED = Event("loupe.evt.catalog.project.created", catalog.Project, "A project was created")
PROJECT_UPDATED = Event(
    "loupe.evt.catalog.project.updated", catalog.ProjectUpdated, "A project was renamed or its description changed"
)
PROJECT_DELETED = Event("loupe.evt.catalog.project.deleted", catalog.ProjectDeleted, "A project was deleted")

# -- catalog: users, API keys, roles (proto/catalog.py) ---------------------------------------------
CREATE_ORG = Command(
    "loupe.catalog.org.create",
    catalog.CreateOrg,
    catalog.OrgCreated,
    "Create an organisation with its first admin user and API key (operators only)",
)
GET_ME = Command("loupe.catalog.me.get", common.Empty, catalog.Me, "Who the API key belongs to")
CREATE_USER = Command(
    "loupe.catalog.user.create", catalog.CreateUser, catalog.User, "Add a user to the caller's organisation"
)
LIST_USERS = Command("loupe.catalog.user.list", common.Empty, catalog.UserList, "List the organisation's users")
GET_USER = Command("loupe.catalog.user.get", catalog.UserRef, catalog.User, "Get one user")
UPDATE_USER = Command(
    "loupe.catalog.user.update",
    catalog.UpdateUserRequest,
    catalog.User,
    "Rename a user, make them an admin, or deactivate them",
)
CREATE_API_KEY = Command(
    "loupe.catalog.apikey.create",
    catalog.CreateApiKeyRequest,
    catalog.ApiKey,
    "Create an API key for a user; its secret is shown only in this reply",
)
LIST_API_KEYS = Command("loupe.catalog.apikey.list", catalog.UserRef, catalog.ApiKeyList, "List a user's API keys")
REVOKE_API_KEY = Command("loupe.catalog.apikey.revoke", catalog.ApiKeyRef, catalog.ApiKey, "Revoke an API key")
CHECK_ACCESS = Command(
    "loupe.catalog.access.check",
    catalog.CheckAccess,
    catalog.ProjectAccess,
    "The caller's role on a project, if it is at least the one asked for",
)
LIST_MEMBERS = Command(
    "loupe.catalog.member.list", catalog.ProjectRef, catalog.MemberList, "List who has a role on a project"
)
SET_MEMBER = Command(
    "loupe.catalog.member.set",
    catalog.SetMemberRequest,
    catalog.Member,
    "Give a user a role on a project, or change it",
)
REMOVE_MEMBER = Command(
    "loupe.catalog.member.remove", catalog.MemberRef, common.Empty, "Take a user's role on a project away"
)
MEMBER_CHANGED = Event(
    "loupe.evt.catalog.member.changed", catalog.MemberChanged, "A user's role on a project was set, changed or removed"
)
ACCESS_COMMANDS: tuple[Command, ...] = (
    CREATE_ORG,
    GET_ME,
    CREATE_USER,
    LIST_USERS,
    GET_USER,
    UPDATE_USER,
    CREATE_API_KEY,
    LIST_API_KEYS,
    REVOKE_API_KEY,
    CHECK_ACCESS,
    LIST_MEMBERS,
    SET_MEMBER,
    REMOVE_MEMBER,
)
APIKEY_REVOKED = Event(
    "loupe.evt.catalog.apikey.revoked",
    catalog.ApiKeyRevoked,
    "An API key was revoked, by itself or with its deactivated user; it no longer authenticates",
)
USER_UPDATED = Event(
    "loupe.evt.catalog.user.updated",
    catalog.UserUpdated,
    "A user was renamed, made or unmade an admin, deactivated or reactivated (`changed` names the fields)",
)
ACCESS_EVENTS: tuple[Event, ...] = (MEMBER_CHANGED, APIKEY_REVOKED, USER_UPDATED)


# -- catalog: label schema (proto/schema.py) --------------------------------------------------------
class SchemaKind(NamedTuple):
    """The commands and events of one kind of label schema item."""

    create: Command
    list: Command
    get: Command
    update: Command
    delete: Command
    created: Event
    updated: Event
    archived: Event
    restored: Event


def _schema_kind(
    resource: str, noun: str, plural: str, create: type, update: type, item: type, items: type, changed: type
) -> SchemaKind:
    command, event = f"loupe.catalog.{resource}.", f"loupe.evt.catalog.{resource}."
    # Generic requests made concrete at run time with the classes passed in, which mypy cannot follow.
    create_request = schema.CreateSchemaItem[create]  # type: ignore[valid-type]
    update_request = schema.UpdateSchemaItem[update]  # type: ignore[valid-type]
    return SchemaKind(
        create=Command(command + "create", create_request, item, f"Create a {noun}"),
        list=Command(command + "list", schema.ListSchemaItems, items, f"List a project's {plural}, sorted by order"),
        get=Command(command + "get", schema.SchemaItemRef, item, f"Get one {noun}, archived or not"),
        update=Command(command + "update", update_request, item, f"Change a {noun}; `archived: false` restores it"),
        delete=Command(
            command + "delete",
            schema.SchemaItemRef,
            common.Empty,
            f"Archive a {noun}: labels that use it keep it, new labels can't use it",
        ),
        created=Event(event + "created", changed, f"A {noun} was created"),
        updated=Event(event + "updated", changed, f"A {noun} changed (`changed` names the fields)"),
        archived=Event(event + "archived", changed, f"A {noun} was archived (deleted)"),
        restored=Event(event + "restored", changed, f"An archived {noun} was restored"),
    )


LABEL_CLASS = _schema_kind(
    "labelclass",
    "label class",
    "label classes",
    schema.CreateLabelClass,
    schema.UpdateLabelClass,
    schema.LabelClass,
    schema.LabelClassList,
    schema.LabelClassChanged,
)
ATTRIBUTE = _schema_kind(
    "attribute",
    "label attribute",
    "label attributes",
    schema.CreateAttribute,
    schema.UpdateAttribute,
    schema.Attribute,
    schema.AttributeList,
    schema.AttributeChanged,
)
TAG_GROUP = _schema_kind(
    "taggroup",
    "tag group",
    "tag groups",
    schema.CreateTagGroup,
    schema.UpdateTagGroup,
    schema.TagGroup,
    schema.TagGroupList,
    schema.TagGroupChanged,
)
TAG_CLASS = _schema_kind(
    "tagclass",
    "tag class",
    "tag classes",
    schema.CreateTagClass,
    schema.UpdateTagClass,
    schema.TagClass,
    schema.TagClassList,
    schema.TagClassChanged,
)
KEYPOINT_SCHEMA = _schema_kind(
    "keypointschema",
    "keypoint schema",
    "keypoint schemas",
    schema.CreateKeypointSchema,
    schema.UpdateKeypointSchema,
    schema.KeypointSchema,
    schema.KeypointSchemaList,
    schema.KeypointSchemaChanged,
)
SCHEMA_KINDS = (LABEL_CLASS, ATTRIBUTE, TAG_GROUP, TAG_CLASS, KEYPOINT_SCHEMA)
GET_LABEL_SCHEMA = Command(
    "loupe.catalog.schema.get",
    schema.GetSchema,
    schema.LabelSchema,
    "Get a project's whole label schema and its version",
)
REPLACE_LABEL_SCHEMA = Command(
    "loupe.catalog.schema.replace",
    schema.ReplaceSchema,
    schema.LabelSchema,
    "Replace a project's whole label schema in one transaction; active items left out are archived",
)
MERGE_LABEL_CLASS = Command(
    "loupe.catalog.labelclass.merge",
    schema.MergeLabelClassRequest,
    schema.LabelClassMerged,
    "Merge a label class into another of the same kind: the source is archived and its objects move to the target",
)
LABEL_CLASS_MERGED = Event(
    "loupe.evt.catalog.labelclass.merged",
    schema.LabelClassMerged,
    "A label class was merged into another: annotation moves its objects to the target",
)
SCHEMA_COMMANDS: tuple[Command, ...] = (
    GET_LABEL_SCHEMA,
    REPLACE_LABEL_SCHEMA,
    MERGE_LABEL_CLASS,
    *(command for kind in SCHEMA_KINDS for command in (kind.create, kind.list, kind.get, kind.update, kind.delete)),
)
SCHEMA_EVENTS: tuple[Event, ...] = (
    *(event for kind in SCHEMA_KINDS for event in (kind.created, kind.updated, kind.archived, kind.restored)),
    LABEL_CLASS_MERGED,
)

# -- catalog: datasets and samples (proto/samples.py) -----------------------------------------------
CREATE_DATASET = Command(
    "loupe.catalog.dataset.create",
    samples.CreateDatasetRequest,
    samples.Dataset,
    "Create a dataset (a split) in a project",
)
LIST_DATASETS = Command(
    "loupe.catalog.dataset.list",
    samples.ListDatasetsRequest,
    samples.DatasetPage,
    "List a project's datasets, oldest first, a page at a time",
)
GET_DATASET = Command("loupe.catalog.dataset.get", samples.DatasetRef, samples.Dataset, "Get one dataset")
UPDATE_DATASET = Command(
    "loupe.catalog.dataset.update",
    samples.UpdateDatasetRequest,
    samples.Dataset,
    "Rename a dataset or change its description",
)
DELETE_DATASET = Command(
    "loupe.catalog.dataset.delete", samples.DatasetRef, common.Empty, "Delete a dataset with all its samples"
)
CREATE_SAMPLES = Command(
    "loupe.catalog.sample.create",
    samples.CreateSamplesRequest,
    samples.CreatedSamples,
    "Create up to 10,000 samples in a dataset, all or nothing; an image already in it is reported as existing",
)
GET_SAMPLE = Command("loupe.catalog.sample.get", samples.SampleRef, samples.Sample, "Get one sample")
LOCATE_SAMPLE = Command(
    "loupe.catalog.sample.locate",
    samples.LocateSample,
    samples.SampleRef,
    "The project of a sample the caller may see, by the sample's id alone",
)
UPDATE_SAMPLE = Command(
    "loupe.catalog.sample.update",
    samples.UpdateSampleRequest,
    samples.Sample,
    "Change a sample: name, external id, metadata, tags, priority, assignment or status",
)
UPDATE_SAMPLES = Command(
    "loupe.catalog.sample.bulkupdate",
    samples.UpdateSamplesRequest,
    samples.UpdatedSamples,
    "Change up to 10,000 samples, each by id, all or nothing",
)
DELETE_SAMPLE = Command("loupe.catalog.sample.delete", samples.SampleRef, common.Empty, "Delete a sample")
DELETE_SAMPLES = Command(
    "loupe.catalog.sample.bulkdelete",
    samples.DeleteSamplesRequest,
    samples.DeletedSamples,
    "Delete up to 10,000 samples by id, all or nothing",
)
MOVE_SAMPLES = Command(
    "loupe.catalog.sample.move",
    samples.MoveSamplesRequest,
    samples.MovedSamples,
    "Move samples into another dataset of the same project",
)
FIND_SAMPLES = Command(
    "loupe.catalog.sample.find",
    samples.FindSamplesByHash,
    samples.SamplesByHash,
    "Which images (by SHA-256) are already samples of a dataset",
)
LOCATE_MEDIA = Command(
    "loupe.catalog.media.locate",
    samples.SampleMediaRef,
    common.Redirect,
    "Where a sample's original or thumbnail can be downloaded (a presigned or external URL)",
)
SIGN_MEDIA = Command(
    "loupe.catalog.media.sign",
    samples.SampleRef,
    samples.SampleUrls,
    "Presigned URLs of a sample's original and thumbnail",
)
SIGN_MEDIA_BATCH = Command(
    "loupe.catalog.media.signbatch",
    samples.SignMediaBatchRequest,
    samples.SampleUrlList,
    "Presigned URLs of up to 500 samples' originals or thumbnails",
)
DATASET_CREATED = Event("loupe.evt.catalog.dataset.created", samples.Dataset, "A dataset was created")
DATASET_UPDATED = Event(
    "loupe.evt.catalog.dataset.updated", samples.DatasetUpdated, "A dataset was renamed or its description changed"
)
DATASET_DELETED = Event(
    "loupe.evt.catalog.dataset.deleted", samples.DatasetDeleted, "A dataset was deleted, and all its samples with it"
)
SAMPLES_CREATED = Event(
    "loupe.evt.catalog.sample.created",
    samples.SamplesCreated,
    "Samples were created in a dataset (one event per call or ingest batch)",
)
SAMPLES_UPDATED = Event(
    "loupe.evt.catalog.sample.updated", samples.SamplesUpdated, "Samples were changed (one event per call)"
)
SAMPLES_DELETED = Event(
    "loupe.evt.catalog.sample.deleted", samples.SamplesDeleted, "Samples were deleted (one event per call)"
)
SAMPLES_MOVED = Event(
    "loupe.evt.catalog.sample.moved",
    samples.SamplesMoved,
    "Samples were moved into another dataset of the project (one event per call)",
)
SAMPLE_COMMANDS: tuple[Command, ...] = (
    CREATE_DATASET,
    LIST_DATASETS,
    GET_DATASET,
    UPDATE_DATASET,
    DELETE_DATASET,
    CREATE_SAMPLES,
    GET_SAMPLE,
    LOCATE_SAMPLE,
    UPDATE_SAMPLE,
    UPDATE_SAMPLES,
    DELETE_SAMPLE,
    DELETE_SAMPLES,
    MOVE_SAMPLES,
    FIND_SAMPLES,
    LOCATE_MEDIA,
    SIGN_MEDIA,
    SIGN_MEDIA_BATCH,
)
SAMPLE_EVENTS: tuple[Event, ...] = (
    DATASET_CREATED,
    DATASET_UPDATED,
    DATASET_DELETED,
    SAMPLES_CREATED,
    SAMPLES_UPDATED,
    SAMPLES_DELETED,
    SAMPLES_MOVED,
)

# -- catalog: search and saved views (proto/search.py) ----------------------------------------------
SEARCH_SAMPLES = Command(
    "loupe.catalog.sample.search",
    search.SearchSamples,
    search.SamplePage,
    "Search a project's samples by fields, metadata and labels, sorted, a page at a time",
)
COUNT_SAMPLES = Command(
    "loupe.catalog.sample.count",
    search.CountSamples,
    search.SampleCount,
    "Count a project's samples that a filter matches, without reading them",
)
CREATE_VIEW = Command(
    "loupe.catalog.view.create",
    search.CreateViewRequest,
    search.View,
    "Save a view: a named filter, or a named set of samples",
)
LIST_VIEWS = Command(
    "loupe.catalog.view.list",
    search.ListViewsRequest,
    search.ViewPage,
    "List a project's saved views, oldest first, a page at a time",
)
GET_VIEW = Command("loupe.catalog.view.get", search.ViewRef, search.View, "Get one saved view")
UPDATE_VIEW = Command(
    "loupe.catalog.view.update",
    search.UpdateViewRequest,
    search.View,
    "Rename a view, or change its description, filter or sort",
)
DELETE_VIEW = Command("loupe.catalog.view.delete", search.ViewRef, common.Empty, "Delete a saved view")
ADD_VIEW_ITEMS = Command(
    "loupe.catalog.viewitem.add", search.ViewItemsRequest, search.View, "Add samples to a view that is a set of samples"
)
REMOVE_VIEW_ITEMS = Command(
    "loupe.catalog.viewitem.remove",
    search.ViewItemsRequest,
    search.View,
    "Remove samples from a view that is a set of samples",
)
RUN_VIEW = Command(
    "loupe.catalog.view.run",
    search.RunViewRequest,
    search.SamplePage,
    "The samples of a view (its filter as of now, or its items), a page at a time",
)
VIEW_CREATED = Event("loupe.evt.catalog.view.created", search.View, "A saved view was created")
VIEW_UPDATED = Event(
    "loupe.evt.catalog.view.updated",
    search.ViewUpdated,
    "A saved view was changed, or samples were added to or removed from it",
)
VIEW_DELETED = Event("loupe.evt.catalog.view.deleted", search.ViewDeleted, "A saved view was deleted")
SEARCH_COMMANDS: tuple[Command, ...] = (
    SEARCH_SAMPLES,
    COUNT_SAMPLES,
    CREATE_VIEW,
    LIST_VIEWS,
    GET_VIEW,
    UPDATE_VIEW,
    DELETE_VIEW,
    ADD_VIEW_ITEMS,
    REMOVE_VIEW_ITEMS,
    RUN_VIEW,
)
SEARCH_EVENTS: tuple[Event, ...] = (VIEW_CREATED, VIEW_UPDATED, VIEW_DELETED)

# -- catalog: embeddings and similarity (proto/embeddings.py) ---------------------------------------
PUT_EMBEDDINGS = Command(
    "loupe.catalog.embedding.put",
    embeddings.PutEmbeddings,
    embeddings.StoredEmbeddings,
    "Store or replace the vectors of up to 1,000 samples in an embedding space (inference calls it)",
)
LIST_EMBEDDING_SPACES = Command(
    "loupe.catalog.embedding.list",
    embeddings.ListEmbeddingSpaces,
    embeddings.EmbeddingSpaces,
    "List a project's embedding spaces: dimensions, how many samples have a vector, when last stored",
)
DELETE_EMBEDDING_SPACE = Command(
    "loupe.catalog.embedding.delete",
    embeddings.EmbeddingSpaceRef,
    common.Empty,
    "Delete an embedding space and every vector in it",
)
FIND_SIMILAR = Command(
    "loupe.catalog.sample.similar",
    embeddings.FindSimilarRequest,
    embeddings.SimilarSamples,
    "The samples nearest to a sample or a vector in an embedding space, nearest first, optionally filtered",
)
FIND_DUPLICATES = Command(
    "loupe.catalog.sample.duplicates",
    embeddings.FindDuplicatesRequest,
    embeddings.DuplicateGroups,
    "Groups of near-duplicate samples in an embedding space, the largest first",
)
EMBEDDINGS_STORED = Event(
    "loupe.evt.catalog.embedding.stored",
    embeddings.EmbeddingsStored,
    "Vectors of samples were stored in an embedding space (one event per call)",
)
EMBEDDING_SPACE_DELETED = Event(
    "loupe.evt.catalog.embedding.deleted",
    embeddings.EmbeddingSpaceDeleted,
    "An embedding space was deleted with all its vectors",
)
EMBEDDING_COMMANDS: tuple[Command, ...] = (
    PUT_EMBEDDINGS,
    LIST_EMBEDDING_SPACES,
    DELETE_EMBEDDING_SPACE,
    FIND_SIMILAR,
    FIND_DUPLICATES,
)
EMBEDDING_EVENTS: tuple[Event, ...] = (EMBEDDINGS_STORED, EMBEDDING_SPACE_DELETED)

# -- annotation: labelsets, labels, objects (proto/annotation.py) -----------------------------------
CREATE_LABELSET = Command(
    "loupe.annotation.labelset.create",
    annotation.CreateLabelsetRequest,
    annotation.Labelset,
    "Create a labelset (e.g. a model's predictions) in a project",
)
LIST_LABELSETS = Command(
    "loupe.annotation.labelset.list",
    annotation.ProjectLabelsets,
    annotation.LabelsetList,
    "List a project's labelsets; ground-truth always exists",
)
GET_LABELSET = Command("loupe.annotation.labelset.get", annotation.LabelsetRef, annotation.Labelset, "Get one labelset")
UPDATE_LABELSET = Command(
    "loupe.annotation.labelset.update",
    annotation.UpdateLabelsetRequest,
    annotation.Labelset,
    "Change a labelset's description",
)
DELETE_LABELSET = Command(
    "loupe.annotation.labelset.delete",
    annotation.LabelsetRef,
    common.Empty,
    "Delete a labelset with all its labels (ground-truth cannot be deleted)",
)
GET_LABEL = Command(
    "loupe.annotation.label.get",
    annotation.LabelRef,
    annotation.Label,
    "Get a sample's label in a labelset, with its objects (UNLABELED when never written)",
)
PUT_LABEL = Command(
    "loupe.annotation.label.put",
    annotation.PutLabelRequest,
    annotation.Label,
    "Write a sample's whole label: status, objects, tags and image attributes",
)
UPDATE_LABEL = Command(
    "loupe.annotation.label.update",
    annotation.UpdateLabelRequest,
    annotation.Label,
    "Change a label's status, score, tags or image attributes",
)
DELETE_LABEL = Command(
    "loupe.annotation.label.delete",
    annotation.LabelRef,
    common.Empty,
    "Delete a sample's label in a labelset, with its objects",
)
PUT_LABELS = Command(
    "loupe.annotation.label.putmany",
    annotation.PutLabelsRequest,
    annotation.PutLabelsReply,
    "Write whole labels of up to 1,000 samples; each is written or reported with why not",
)
GET_LABELS = Command(
    "loupe.annotation.label.getmany",
    annotation.GetLabelsRequest,
    annotation.LabelList,
    "Read the labels of up to 1,000 samples in a labelset, in the order asked",
)
UPSERT_OBJECTS = Command(
    "loupe.annotation.object.upsert",
    annotation.UpsertObjectsRequest,
    annotation.WrittenObjects,
    "Create or replace up to 10,000 objects of many samples, all or nothing",
)
DELETE_OBJECTS = Command(
    "loupe.annotation.object.delete",
    annotation.DeleteObjectsRequest,
    annotation.DeletedObjects,
    "Delete up to 10,000 objects by id, all or nothing",
)
LIST_OBJECTS = Command(
    "loupe.annotation.object.list",
    annotation.ListObjectsRequest,
    annotation.ObjectPage,
    "List a labelset's objects, a page at a time",
)
LIST_AUDIT = Command(
    "loupe.annotation.audit.list",
    annotation.ListAuditRequest,
    annotation.AuditPage,
    "Who changed which label or object, when, and to what; newest first",
)
LABEL_CHANGED = Event(
    "loupe.evt.annotation.label.changed",
    annotation.LabelChanged,
    "A sample's label in a labelset changed; carries its per-class object counts and tags",
)
LABELSET_CREATED = Event("loupe.evt.annotation.labelset.created", annotation.Labelset, "A labelset was created")
LABELSET_DELETED = Event(
    "loupe.evt.annotation.labelset.deleted", annotation.LabelsetDeleted, "A labelset was deleted with all its labels"
)
ANNOTATION_COMMANDS: tuple[Command, ...] = (
    CREATE_LABELSET,
    LIST_LABELSETS,
    GET_LABELSET,
    UPDATE_LABELSET,
    DELETE_LABELSET,
    GET_LABEL,
    PUT_LABEL,
    PUT_LABELS,
    GET_LABELS,
    UPDATE_LABEL,
    DELETE_LABEL,
    UPSERT_OBJECTS,
    DELETE_OBJECTS,
    LIST_OBJECTS,
    LIST_AUDIT,
)
ANNOTATION_EVENTS: tuple[Event, ...] = (LABEL_CHANGED, LABELSET_CREATED, LABELSET_DELETED)

# -- annotation: work queues, issues, label QA (proto/review.py) ------------------------------------
NEXT_SAMPLE = Command(
    "loupe.annotation.queue.next",
    review.NextSampleRequest,
    review.NextSampleReply,
    "Hand out the next sample to label or review, locked for the caller until the lock expires",
)
RELEASE_LOCK = Command(
    "loupe.annotation.lock.release",
    review.LockRef,
    common.Empty,
    "Give a sample handed out by a queue back before its lock expires",
)
CREATE_ISSUE = Command(
    "loupe.annotation.issue.create",
    review.CreateIssueRequest,
    review.Issue,
    "Open an issue on a sample (optionally on one of its objects)",
)
LIST_ISSUES = Command(
    "loupe.annotation.issue.list",
    review.ListIssuesRequest,
    review.IssuePage,
    "List a project's issues, newest first, a page at a time",
)
GET_ISSUE = Command("loupe.annotation.issue.get", review.IssueRef, review.Issue, "Get an issue with its comments")
UPDATE_ISSUE = Command(
    "loupe.annotation.issue.update",
    review.UpdateIssueRequest,
    review.Issue,
    "Close or reopen an issue, or change its description",
)
DELETE_ISSUE = Command("loupe.annotation.issue.delete", review.IssueRef, common.Empty, "Delete an issue")
CREATE_COMMENT = Command(
    "loupe.annotation.comment.create", review.CreateCommentRequest, review.Issue, "Comment on an issue"
)
CREATE_QA_RUN = Command(
    "loupe.annotation.qarun.create",
    review.CreateQaRunRequest,
    review.QaRun,
    "Start label QA: compare a predictions labelset with ground truth, as a job",
)
LIST_QA_RUNS = Command(
    "loupe.annotation.qarun.list",
    review.ListQaRunsRequest,
    review.QaRunList,
    "List a project's label QA runs, newest first",
)
GET_QA_RUN = Command(
    "loupe.annotation.qarun.get", review.QaRunRef, review.QaRun, "Get a label QA run: its state and counts by kind"
)
LIST_FINDINGS = Command(
    "loupe.annotation.finding.list", review.ListFindingsRequest, review.FindingPage, "List a QA run's findings"
)
RESOLVE_FINDING = Command(
    "loupe.annotation.finding.resolve",
    review.ResolveFindingRequest,
    review.Finding,
    "Resolve a finding (FIXED or NOT_AN_ERROR), or reopen it",
)
QA_JOB = Job("loupe.job.annotation.qa", review.QaJob, "Compare the labelsets of a label QA run")
QA_RUN_FINISHED = Event("loupe.evt.annotation.qarun.finished", review.QaRun, "A label QA run succeeded or failed")
REVIEW_COMMANDS: tuple[Command, ...] = (
    NEXT_SAMPLE,
    RELEASE_LOCK,
    CREATE_ISSUE,
    LIST_ISSUES,
    GET_ISSUE,
    UPDATE_ISSUE,
    DELETE_ISSUE,
    CREATE_COMMENT,
    CREATE_QA_RUN,
    LIST_QA_RUNS,
    GET_QA_RUN,
    LIST_FINDINGS,
    RESOLVE_FINDING,
)

# -- annotation: releases, exports, imports (proto/releases.py) -------------------------------------
CREATE_RELEASE = Command(
    "loupe.annotation.release.create",
    releases.CreateReleaseRequest,
    releases.Release,
    "Cut a release: an immutable snapshot of samples, labels and schema, built as a job",
)
LIST_RELEASES = Command(
    "loupe.annotation.release.list",
    releases.ListReleasesRequest,
    releases.ReleasePage,
    "List a project's releases, newest first",
)
GET_RELEASE = Command("loupe.annotation.release.get", releases.ReleaseRef, releases.Release, "Get a release")
DELETE_RELEASE = Command(
    "loupe.annotation.release.delete", releases.ReleaseRef, common.Empty, "Delete a release and its exports"
)
CREATE_EXPORT = Command(
    "loupe.annotation.export.create",
    releases.CreateExportRequest,
    releases.Export,
    "Export a release to a format (COCO, YOLO, VOC, PNG masks, Segments, Hasty, native), as a job",
)
LIST_EXPORTS = Command(
    "loupe.annotation.export.list", releases.ListExportsRequest, releases.ExportList, "List a release's exports"
)
GET_EXPORT = Command(
    "loupe.annotation.export.get",
    releases.ExportRef,
    releases.Export,
    "Get an export; once SUCCEEDED it carries a presigned download URL",
)
LOCATE_EXPORT = Command(
    "loupe.annotation.export.locate",
    releases.ExportRef,
    common.Redirect,
    "Where a finished export can be downloaded (a presigned URL)",
)
CREATE_LABEL_IMPORT = Command(
    "loupe.annotation.import.create",
    releases.CreateImportRequest,
    releases.Import,
    "Prepare an import of labelled data: answers a presigned URL to upload the file to",
)
START_LABEL_IMPORT = Command(
    "loupe.annotation.import.start", releases.ImportRef, releases.Import, "Start an import once its file is uploaded"
)
GET_LABEL_IMPORT = Command(
    "loupe.annotation.import.get", releases.ImportRef, releases.Import, "Get an import and its counts"
)
LIST_LABEL_IMPORT_ITEMS = Command(
    "loupe.annotation.importitem.list",
    releases.ListImportItemsRequest,
    releases.ImportItemPage,
    "What became of each image of an import",
)
RELEASE_JOB = Job("loupe.job.annotation.release", releases.ReleaseJob, "Build a release snapshot, or an export of one")
LABEL_IMPORT_JOB = Job(
    "loupe.job.annotation.label-import",
    releases.LabelImportJob,
    "Take a label import through a step: hand its images to ingest, or write its labels",
)
RELEASE_FINISHED = Event(
    "loupe.evt.annotation.release.finished",
    releases.Release,
    "A release was built (SUCCEEDED) or could not be (FAILED)",
)
EXPORT_FINISHED = Event(
    "loupe.evt.annotation.export.finished", releases.Export, "An export finished (SUCCEEDED or FAILED)"
)
LABEL_IMPORT_FINISHED = Event("loupe.evt.annotation.import.finished", releases.Import, "An import finished")
RELEASE_COMMANDS: tuple[Command, ...] = (
    CREATE_RELEASE,
    LIST_RELEASES,
    GET_RELEASE,
    DELETE_RELEASE,
    CREATE_EXPORT,
    LIST_EXPORTS,
    GET_EXPORT,
    LOCATE_EXPORT,
    CREATE_LABEL_IMPORT,
    START_LABEL_IMPORT,
    GET_LABEL_IMPORT,
    LIST_LABEL_IMPORT_ITEMS,
)
ANNOTATION_JOBS: tuple[Job, ...] = (QA_JOB, RELEASE_JOB, LABEL_IMPORT_JOB)

# -- ingest (proto/ingest.py) -----------------------------------------------------------------------
MEDIA_STORED = Event(
    "loupe.evt.ingest.media.stored",
    ingest.MediaStored,
    "Ingest validated and stored images for a dataset; the catalog registers them as samples",
)
RUN_PROGRESSED = Event(
    "loupe.evt.ingest.run.progressed", ingest.RunProgressed, "An import run moved on: its counts changed or it finished"
)
CREATE_UPLOAD = Command(
    "loupe.ingest.upload.create",
    ingest.CreateUploadRequest,
    ingest.Upload,
    "Hand out presigned PUT URLs for images a client uploads straight to S3",
)
COMPLETE_UPLOAD = Command(
    "loupe.ingest.upload.complete",
    ingest.CompleteUploadRequest,
    ingest.Run,
    "Tell ingest the uploads are in S3; it validates, stores and registers them",
)
UPLOAD_FILES = Command(
    "loupe.ingest.upload.files",
    ingest.UploadFilesRequest,
    ingest.Run,
    "Validate, store and register images whose bytes come with the request; answered once the run is finished",
)
IMPORT_URLS = Command(
    "loupe.ingest.urls.import",
    ingest.ImportUrlsRequest,
    ingest.Run,
    "Fetch images from URLs server-side (never from private addresses) into a dataset",
)
IMPORT_BUCKET = Command(
    "loupe.ingest.bucket.import",
    ingest.ImportBucketRequest,
    ingest.Run,
    "Import every image under a prefix of a bucket on the user's S3, resumably",
)
REGISTER_MEDIA = Command(
    "loupe.ingest.media.register",
    ingest.RegisterMediaRequest,
    ingest.Run,
    "Make samples of images the caller's organisation already stored, by their SHA-256",
)
OWNED_MEDIA = Command(
    "loupe.ingest.media.owned",
    ingest.OwnedMediaRequest,
    ingest.OwnedMedia,
    "Which images (by SHA-256) an organisation stored; asked before a sample names one",
)
SEAL_BUCKET_KEYS = Command(
    "loupe.ingest.bucket.seal",
    ingest.BucketSource,
    ingest.SealedKeys,
    "Check a bucket source and encrypt its keys, for a service that starts its import later",
)
CREATE_STORED_BUCKET = Command(
    "loupe.ingest.bucket.create",
    ingest.CreateStoredBucketRequest,
    ingest.StoredBucket,
    "Keep a bucket of your S3 and the keys that read it (encrypted) for the project's imports",
)
LIST_STORED_BUCKETS = Command(
    "loupe.ingest.bucket.list",
    ingest.ListStoredBucketsRequest,
    ingest.StoredBucketList,
    "List the project's stored buckets (never their keys)",
)
GET_STORED_BUCKET = Command(
    "loupe.ingest.bucket.get", ingest.StoredBucketRef, ingest.StoredBucket, "Get a stored bucket (never its keys)"
)
DELETE_STORED_BUCKET = Command(
    "loupe.ingest.bucket.delete",
    ingest.StoredBucketRef,
    common.Empty,
    "Forget a stored bucket and its keys; imports still reading it fail",
)
GET_RUN = Command("loupe.ingest.run.get", ingest.RunRef, ingest.Run, "Get an import run and its counts")
LIST_RUNS = Command(
    "loupe.ingest.run.list", ingest.ListRunsRequest, ingest.RunList, "List a project's import runs, newest first"
)
CANCEL_RUN = Command(
    "loupe.ingest.run.cancel", ingest.RunRef, ingest.Run, "Stop an import run; what it already registered stays"
)
LIST_RUN_ITEMS = Command(
    "loupe.ingest.item.list",
    ingest.ListRunItemsRequest,
    ingest.RunItemPage,
    "List a run's files with their outcome and, for failures, the reason",
)
MEDIA_IMPORT_JOB = Job(
    "loupe.job.ingest.import", ingest.MediaImportJob, "Process a slice of an import run's pending files"
)
BUS_MEDIA = Job(
    "loupe.job.ingest.media",
    ingest.BusMedia,
    "Publish here to ingest an image (bytes or URL) from outside, durably, for a dataset",
)
INGEST_COMMANDS: tuple[Command, ...] = (
    CREATE_UPLOAD,
    COMPLETE_UPLOAD,
    UPLOAD_FILES,
    IMPORT_URLS,
    IMPORT_BUCKET,
    REGISTER_MEDIA,
    OWNED_MEDIA,
    SEAL_BUCKET_KEYS,
    CREATE_STORED_BUCKET,
    LIST_STORED_BUCKETS,
    GET_STORED_BUCKET,
    DELETE_STORED_BUCKET,
    GET_RUN,
    LIST_RUNS,
    CANCEL_RUN,
    LIST_RUN_ITEMS,
)
INGEST_EVENTS: tuple[Event, ...] = (MEDIA_STORED, RUN_PROGRESSED)
INGEST_JOBS: tuple[Job, ...] = (MEDIA_IMPORT_JOB, BUS_MEDIA)

# -- training: configurations, runs, models (proto/training.py) -------------------------------------
GET_TRAINING_CONFIG = Command(
    "loupe.training.config.get",
    training.ProjectScope,
    training.ProjectConfig,
    "Get a project's training configuration (the defaults until one is set)",
)
REPLACE_TRAINING_CONFIG = Command(
    "loupe.training.config.replace",
    training.ReplaceConfigRequest,
    training.ProjectConfig,
    "Set a project's training configuration; fields left out take their defaults",
)
CREATE_TRAINING_RUN = Command(
    "loupe.training.run.create",
    training.CreateTrainingRunRequest,
    training.TrainingRun,
    "Train a model version from a release (or from everything labelled now, cutting a release first), as a job",
)
LIST_TRAINING_RUNS = Command(
    "loupe.training.run.list",
    training.ListTrainingRunsRequest,
    training.TrainingRunList,
    "List a project's training runs, newest first",
)
GET_TRAINING_RUN = Command(
    "loupe.training.run.get", training.TrainingRunRef, training.TrainingRun, "Get a training run and its progress"
)
CANCEL_TRAINING_RUN = Command(
    "loupe.training.run.cancel",
    training.TrainingRunRef,
    training.TrainingRun,
    "Cancel a training run: a queued one at once, a running one within seconds (it stays RUNNING until stopped)",
)
GET_TRAINING_RUN_LOG = Command(
    "loupe.training.run.log",
    training.RunLogRequest,
    training.RunLog,
    "Read a training run's log, oldest line first, a page at a time; pass next_cursor back to follow a running run",
)
LIST_MODELS = Command("loupe.training.model.list", training.ProjectScope, training.ModelList, "List a project's models")
GET_MODEL = Command("loupe.training.model.get", training.ModelRef, training.Model, "Get a model")
DELETE_MODEL = Command(
    "loupe.training.model.delete",
    training.ModelRef,
    common.Empty,
    "Delete a model with all its versions, their files included",
)
ACTIVATE_MODEL_VERSION = Command(
    "loupe.training.model.activate",
    training.ActivateVersionRequest,
    training.ModelVersion,
    "Make a version of the model the one that serves its task family for the project",
)
LIST_MODEL_VERSIONS = Command(
    "loupe.training.version.list", training.ModelRef, training.VersionList, "List a model's versions, newest first"
)
GET_MODEL_VERSION = Command(
    "loupe.training.version.get", training.VersionRef, training.ModelVersion, "Get a model version with its metrics"
)
DELETE_MODEL_VERSION = Command(
    "loupe.training.version.delete",
    training.DeleteVersionRequest,
    common.Empty,
    "Delete a model version: its files only (`weights_only`: the record and metrics stay), or all of it",
)
TRAINING_RUN_JOB = Job("loupe.job.training.run", training.TrainingRunJob, "Train, evaluate, export and register a run")
TRAINING_RUN_CHANGED = Event(
    "loupe.evt.training.run.changed",
    training.TrainingRun,
    "A training run changed state (queued, running, succeeded, failed, cancelled) or was asked to cancel",
)
TRAINING_RUN_PROGRESSED = Event(
    "loupe.evt.training.run.progressed",
    training.TrainingRunProgressed,
    "A training run finished an epoch: its loss, validation metrics, speed and ETA",
)
MODEL_VERSION_CREATED = Event(
    "loupe.evt.training.version.created",
    training.ModelVersion,
    "A model version was trained, evaluated and published into the model repository",
)
ACTIVE_VERSION_CHANGED = Event(
    "loupe.evt.training.model.activated",
    training.ActiveVersionChanged,
    "The version serving a task family for a project changed",
)
TRAINING_COMMANDS: tuple[Command, ...] = (
    GET_TRAINING_CONFIG,
    REPLACE_TRAINING_CONFIG,
    CREATE_TRAINING_RUN,
    LIST_TRAINING_RUNS,
    GET_TRAINING_RUN,
    CANCEL_TRAINING_RUN,
    GET_TRAINING_RUN_LOG,
    LIST_MODELS,
    GET_MODEL,
    DELETE_MODEL,
    ACTIVATE_MODEL_VERSION,
    LIST_MODEL_VERSIONS,
    GET_MODEL_VERSION,
    DELETE_MODEL_VERSION,
)
TRAINING_EVENTS: tuple[Event, ...] = (
    TRAINING_RUN_CHANGED,
    TRAINING_RUN_PROGRESSED,
    MODEL_VERSION_CREATED,
    ACTIVE_VERSION_CHANGED,
)
TRAINING_JOBS: tuple[Job, ...] = (TRAINING_RUN_JOB,)

# -- inference (proto/inference.py) -----------------------------------------------------------------
PREDICT = Command(
    "loupe.inference.image.predict",
    inference.PredictRequest,
    inference.Predictions,
    "Predict one image (bytes, a URL or a sample) with a model version, in the shapes labels have",
)
SIMILAR_TO_IMAGE = Command(
    "loupe.inference.image.similar",
    inference.SimilarToImageRequest,
    embeddings.SimilarSamples,
    "The samples nearest to an uploaded image in a model version's embedding space",
)
LIST_HEURISTICS = Command(
    "loupe.inference.heuristic.list",
    common.Empty,
    inference.HeuristicList,
    "The active-learning heuristics: ids, what they prefer, the model families they rank with",
)
TAG_STATUS = Command(
    "loupe.inference.tag.status",
    inference.TaggingScope,
    inference.TagStatusList,
    "Each tag group's status: queued, training (a tagging run will learn it) or live (the active tagger predicts it)",
)
CREATE_INFERENCE_JOB = Command(
    "loupe.inference.job.create",
    inference.CreateJobRequest,
    inference.InferenceJob,
    "Start an auto-label, embeddings or ranking job over a selection of samples",
)
LIST_INFERENCE_JOBS = Command(
    "loupe.inference.job.list", inference.ListJobsRequest, inference.JobList, "List a project's inference jobs"
)
GET_INFERENCE_JOB = Command(
    "loupe.inference.job.get", inference.JobRef, inference.InferenceJob, "Get an inference job and its progress"
)
CANCEL_INFERENCE_JOB = Command(
    "loupe.inference.job.cancel",
    inference.JobRef,
    inference.InferenceJob,
    "Cancel an inference job: a queued one at once, a running one after its current slice",
)
LIST_INFERENCE_RESULTS = Command(
    "loupe.inference.job.results",
    inference.ResultsRequest,
    inference.JobResults,
    "A job's per-sample results: a ranking's picks best first, an auto-label job's predictions",
)
INFERENCE_JOB = Job("loupe.job.inference.run", inference.InferenceJobRun, "Go through (or continue) an inference job")
INFERENCE_JOB_CHANGED = Event(
    "loupe.evt.inference.job.changed",
    inference.InferenceJob,
    "An inference job changed state (queued, running, succeeded, failed, cancelled) or was asked to cancel",
)
INFERENCE_JOB_PROGRESSED = Event(
    "loupe.evt.inference.job.progressed",
    inference.JobProgressed,
    "An inference job recorded another slice of samples: how far it is, how fast, the ETA",
)
INFERENCE_COMMANDS: tuple[Command, ...] = (
    PREDICT,
    SIMILAR_TO_IMAGE,
    LIST_HEURISTICS,
    TAG_STATUS,
    CREATE_INFERENCE_JOB,
    LIST_INFERENCE_JOBS,
    GET_INFERENCE_JOB,
    CANCEL_INFERENCE_JOB,
    LIST_INFERENCE_RESULTS,
)
INFERENCE_EVENTS: tuple[Event, ...] = (INFERENCE_JOB_CHANGED, INFERENCE_JOB_PROGRESSED)
INFERENCE_JOBS: tuple[Job, ...] = (INFERENCE_JOB,)

# -- pipelines (proto/pipelines.py), run by inference -------------------------------------------------
CREATE_PIPELINE = Command(
    "loupe.inference.pipeline.create",
    pipelines.CreatePipelineRequest,
    pipelines.Pipeline,
    "Create a live pipeline: a source, a model version, sinks",
)
LIST_PIPELINES = Command(
    "loupe.inference.pipeline.list", pipelines.ProjectPipelines, pipelines.PipelineList, "List a project's pipelines"
)
GET_PIPELINE = Command(
    "loupe.inference.pipeline.get", pipelines.PipelineRef, pipelines.Pipeline, "Get a pipeline and its state"
)
UPDATE_PIPELINE = Command(
    "loupe.inference.pipeline.update",
    pipelines.UpdatePipelineRequest,
    pipelines.Pipeline,
    "Change a pipeline; a running one restarts with the changes",
)
DELETE_PIPELINE = Command(
    "loupe.inference.pipeline.delete", pipelines.PipelineRef, common.Empty, "Stop and delete a pipeline"
)
ENABLE_PIPELINE = Command(
    "loupe.inference.pipeline.enable", pipelines.PipelineRef, pipelines.Pipeline, "Start a pipeline (and on restarts)"
)
DISABLE_PIPELINE = Command(
    "loupe.inference.pipeline.disable", pipelines.PipelineRef, pipelines.Pipeline, "Stop a pipeline"
)
PUSH_PIPELINE_FRAME = Command(
    "loupe.inference.pipeline.frame",
    pipelines.PushFrameRequest,
    pipelines.FrameAccepted,
    "Push one frame into a running pipeline with an HTTP source; a full queue drops it (counted)",
)
CAPTURE_PIPELINE_FRAME = Command(
    "loupe.inference.pipeline.capture",
    pipelines.CaptureRequest,
    pipelines.Pipeline,
    "Put the pipeline's next frame into a dataset as a sample",
)
PIPELINE_METRICS = Command(
    "loupe.inference.pipeline.metrics",
    pipelines.PipelineRef,
    pipelines.PipelineMetrics,
    "A pipeline's live metrics: latency p50/p95, throughput, dropped frames over 1, 5 and 15 minutes",
)
EXPORT_PIPELINE_CONFIG = Command(
    "loupe.inference.pipeline.export",
    pipelines.PipelineRef,
    pipelines.PipelineConfig,
    "A pipeline's source and sinks as YAML",
)
IMPORT_PIPELINE_CONFIG = Command(
    "loupe.inference.pipeline.import",
    pipelines.ImportConfigRequest,
    pipelines.Pipeline,
    "Replace a pipeline's source and sinks from YAML",
)
PIPELINE_COMMANDS: tuple[Command, ...] = (
    CREATE_PIPELINE,
    LIST_PIPELINES,
    GET_PIPELINE,
    UPDATE_PIPELINE,
    DELETE_PIPELINE,
    ENABLE_PIPELINE,
    DISABLE_PIPELINE,
    PUSH_PIPELINE_FRAME,
    CAPTURE_PIPELINE_FRAME,
    PIPELINE_METRICS,
    EXPORT_PIPELINE_CONFIG,
    IMPORT_PIPELINE_CONFIG,
)

# -- saved sources and sinks (proto/saved_io.py), kept by inference ------------------------------------
CREATE_SAVED_SOURCE = Command(
    "loupe.inference.savedsource.create",
    saved_io.CreateSavedSourceRequest,
    saved_io.SavedSource,
    "Save a pipeline source in the organisation, for its projects' pipelines to use",
)
LIST_SAVED_SOURCES = Command(
    "loupe.inference.savedsource.list", saved_io.OrgScope, saved_io.SavedSourceList, "List the saved sources"
)
GET_SAVED_SOURCE = Command(
    "loupe.inference.savedsource.get", saved_io.SavedRef, saved_io.SavedSource, "Get a saved source"
)
UPDATE_SAVED_SOURCE = Command(
    "loupe.inference.savedsource.update",
    saved_io.UpdateSavedSourceRequest,
    saved_io.SavedSource,
    "Change a saved source; the pipelines that use it change and restart with it",
)
DELETE_SAVED_SOURCE = Command(
    "loupe.inference.savedsource.delete", saved_io.SavedRef, common.Empty, "Delete a saved source no pipeline uses"
)
CREATE_SAVED_SINK = Command(
    "loupe.inference.savedsink.create",
    saved_io.CreateSavedSinkRequest,
    saved_io.SavedSink,
    "Save a pipeline sink in the organisation, for its projects' pipelines to use",
)
LIST_SAVED_SINKS = Command(
    "loupe.inference.savedsink.list", saved_io.OrgScope, saved_io.SavedSinkList, "List the saved sinks"
)
GET_SAVED_SINK = Command("loupe.inference.savedsink.get", saved_io.SavedRef, saved_io.SavedSink, "Get a saved sink")
UPDATE_SAVED_SINK = Command(
    "loupe.inference.savedsink.update",
    saved_io.UpdateSavedSinkRequest,
    saved_io.SavedSink,
    "Change a saved sink; the pipelines that use it change and restart with it",
)
DELETE_SAVED_SINK = Command(
    "loupe.inference.savedsink.delete", saved_io.SavedRef, common.Empty, "Delete a saved sink no pipeline uses"
)
USE_SAVED_IO = Command(
    "loupe.inference.pipelinesaved.set",
    saved_io.UseSavedRequest,
    saved_io.PipelineSaved,
    "Make a pipeline use saved sources and sinks: their configs are copied in and followed",
)
GET_PIPELINE_SAVED_IO = Command(
    "loupe.inference.pipelinesaved.get",
    saved_io.PipelineSavedRef,
    saved_io.PipelineSaved,
    "The saved source and sinks a pipeline uses",
)
SAVED_IO_COMMANDS: tuple[Command, ...] = (
    CREATE_SAVED_SOURCE,
    LIST_SAVED_SOURCES,
    GET_SAVED_SOURCE,
    UPDATE_SAVED_SOURCE,
    DELETE_SAVED_SOURCE,
    CREATE_SAVED_SINK,
    LIST_SAVED_SINKS,
    GET_SAVED_SINK,
    UPDATE_SAVED_SINK,
    DELETE_SAVED_SINK,
    USE_SAVED_IO,
    GET_PIPELINE_SAVED_IO,
)

SERVICES = ("gateway", "catalog", "annotation", "ingest", "training", "inference")
WORKER_SERVICES = SERVICES[1:]

COMMANDS: tuple[Command, ...] = (
    VERIFY_API_KEY,
    CREATE_PROJECT,
    LIST_PROJECTS,
    GET_PROJECT,
    UPDATE_PROJECT,
    DELETE_PROJECT,
    *ACCESS_COMMANDS,
    *SCHEMA_COMMANDS,
    *SAMPLE_COMMANDS,
    *SEARCH_COMMANDS,
    *EMBEDDING_COMMANDS,
    *INGEST_COMMANDS,
    *ANNOTATION_COMMANDS,
    *REVIEW_COMMANDS,
    *RELEASE_COMMANDS,
    *TRAINING_COMMANDS,
    *INFERENCE_COMMANDS,
    *PIPELINE_COMMANDS,
    *SAVED_IO_COMMANDS,
    *(c for s in WORKER_SERVICES for c in dead_letter_commands(s)),
    *(info_command(s) for s in SERVICES),
)
EVENTS: tuple[Event, ...] = (
    PROJECT_CREATED,
    PROJECT_UPDATED,
    PROJECT_DELETED,
    *ACCESS_EVENTS,
    *SCHEMA_EVENTS,
    *SAMPLE_EVENTS,
    *SEARCH_EVENTS,
    *EMBEDDING_EVENTS,
    *ANNOTATION_EVENTS,
    QA_RUN_FINISHED,
    RELEASE_FINISHED,
    EXPORT_FINISHED,
    LABEL_IMPORT_FINISHED,
    *INGEST_EVENTS,
    *TRAINING_EVENTS,
    *INFERENCE_EVENTS,
)
JOBS: tuple[Job, ...] = (*INGEST_JOBS, *ANNOTATION_JOBS, *TRAINING_JOBS, *INFERENCE_JOBS)
