"""Sample search, saved views, and the label summary search reads: messages of their commands and events.

A search is one filter document (`SampleFilter`): every field given must hold (AND). Lists inside a
field are alternatives (OR): `statuses: ["NEW", "DONE"]`, `metadata: {"weather": ["rain", "snow"]}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from proto.annotation import LabelStatus
from proto.catalog import Description, Page, PageLimit
from proto.common import Uuid
from proto.samples import Sample, SampleStatus, Tag

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Ids = Annotated[list[Id], msgspec.Meta(min_length=1, max_length=1000)]
Tags = Annotated[list[Tag], msgspec.Meta(min_length=1, max_length=100)]
ViewName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Count = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
Instant = Annotated[datetime, msgspec.Meta(tz=True)]  # with its UTC offset, e.g. 2024-05-01T00:00:00Z

# A leading "-" sorts descending; ties are broken by sample id in the same direction.
Sort = Literal["-priority", "priority", "-created_at", "created_at", "-updated_at", "updated_at", "-name", "name"]
# none: no total; capped: exact up to TOTAL_CAP matches, past that `total` is a lower bound;
# exact: count every match (slow on large unselective filters).
TotalMode = Literal["none", "capped", "exact"]
TOTAL_CAP = 10_000

# -- metadata conditions ------------------------------------------------------------------------------
# `metadata` maps a key path (`weather`, `camera.model`) to what its value must be:
#   "rain"                               equal (a string, number or boolean), or an array holding it
#   ["rain", "snow"]                     any of these (OR); the list may mix values and conditions
#   {"gte": 10, "lt": 20}                a condition: every operator given must hold
#   [{"lt": 5}, {"gt": 50}]              either condition (OR)
# Keys are ANDed. Ranges compare numbers with numbers and strings with strings (ISO dates compare
# correctly as strings); a value of another type does not match.
Scalar = str | int | float | bool
Bound = float | str


class MetadataCondition(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    eq: Scalar | None = None
    in_: list[Scalar] | None = msgspec.field(default=None, name="in")
    gt: Bound | None = None
    gte: Bound | None = None
    lt: Bound | None = None
    lte: Bound | None = None
    exists: bool | None = None  # true: the key is present (any value, even null); false: it is absent


MetadataValue = Scalar | MetadataCondition | list[Scalar | MetadataCondition]
METADATA_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$"
MAX_METADATA_KEYS = 50


def _inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec's schema of MetadataValue, with its `$defs` inlined so it can sit inside another schema."""
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


# Metadata values are checked by the catalog rather than by the decoder, so a mistake is reported at
# `$.metadata.<key>` (a decoder only knows `$.metadata[...]`); the schema still documents them exactly.
MetadataFilter = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description="key path → value, list of alternatives (OR), or condition; keys are ANDed",
        extra_json_schema={
            "propertyNames": {"pattern": METADATA_KEY_PATTERN},
            "maxProperties": MAX_METADATA_KEYS,
            "additionalProperties": _inline_defs(msgspec.json.schema(MetadataValue)),
        },
    ),
]


# -- label conditions ---------------------------------------------------------------------------------


class ClassCount(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Objects of one label class in the sample's label: `{min: 1}` present, `{max: 0}` absent,
    `{min: 2}` at least two, `{min: 1, max: 3}` one to three."""

    class_id: Id
    min: Count | None = None
    max: Count | None = None


class LabelFilter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Conditions on the sample's label in one labelset (each given must hold)."""

    labelset: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "ground-truth"
    status: Annotated[list[LabelStatus], msgspec.Meta(min_length=1)] | None = None
    classes: Annotated[list[ClassCount], msgspec.Meta(min_length=1, max_length=20)] | None = None
    # Image-level tag classes of the label.
    tags_any: Ids | None = None
    tags_all: Ids | None = None
    tags_none: Ids | None = None


# -- similarity conditions ----------------------------------------------------------------------------
# An embedding space holds one model version's vectors (e.g. `detector:3`), all of one dimension, one per
# sample at most. Distances are cosine distances: 0 the same direction, 1 unrelated, 2 opposite.
SPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
Space = Annotated[str, msgspec.Meta(pattern=SPACE_PATTERN, description="an embedding space, e.g. detector:3")]
MAX_DIMS = 2000
Vector = Annotated[list[float], msgspec.Meta(min_length=1, max_length=MAX_DIMS)]
Distance = Annotated[float, msgspec.Meta(ge=0, le=2)]
Neighbours = Annotated[int, msgspec.Meta(ge=1, le=1000)]
MAX_SAMPLE_IDS = 10_000
SampleIds = Annotated[list[Uuid], msgspec.Meta(min_length=1, max_length=MAX_SAMPLE_IDS)]


class VectorQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Near what, in which space: the vector stored for `sample_id`, or `vector`; one of the two."""

    space: Space
    sample_id: Uuid | None = None  # that sample is never among the answers
    vector: Vector | None = None


class SimilarTo(VectorQuery, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Samples near a sample or a vector: those within `max_distance`, the `top_k` nearest of those the
    rest of the filter matches, or both (the `top_k` nearest, of them those within `max_distance`)."""

    max_distance: Distance | None = None
    top_k: Neighbours | None = None


class SampleFilter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Which samples of the project; every field given must hold. An empty filter matches all."""

    dataset_ids: Ids | None = None
    statuses: Annotated[list[SampleStatus], msgspec.Meta(min_length=1)] | None = None
    name_contains: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None  # case-insensitive
    external_ids: Ids | None = None
    created_since: Instant | None = None  # inclusive
    created_before: Instant | None = None  # exclusive
    updated_since: Instant | None = None
    updated_before: Instant | None = None
    labeler: Id | None = None  # a user id, or "unassigned"
    reviewer: Id | None = None
    tags_any: Tags | None = None
    tags_all: Tags | None = None
    tags_none: Tags | None = None
    metadata: MetadataFilter | None = None
    labels: LabelFilter | None = None
    sample_ids: SampleIds | None = None  # any of these samples, e.g. a ranking made into a view
    similar: SimilarTo | None = None


class SamplePaging(msgspec.Struct, frozen=True, kw_only=True):
    """How to page through samples: with `cursor` (pass `next_cursor` back; stable while samples are
    added) or with `offset`, not both; `total` asks for a count of all matches."""

    limit: PageLimit = 50
    cursor: str | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0
    total: TotalMode = "none"


class SearchQuery(SampleFilter, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The body of a search: the filter, then how to order and page. Page with `cursor` (pass
    `next_cursor` back; stable while samples are added) or with `offset`; not both."""

    sort: Sort = "-priority"
    # SamplePaging's fields again: a msgspec Struct has a single base, and this one is the filter.
    limit: PageLimit = 50
    cursor: str | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0
    total: TotalMode = "none"


class CountSamples(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    filter: SampleFilter


class SampleCount(msgspec.Struct, frozen=True, kw_only=True):
    count: int  # the samples the filter matches, counted exactly


class SearchSamples(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    query: SearchQuery


class ListSamples(SamplePaging, frozen=True, kw_only=True):
    """Query parameters of the simple listing; POST .../samples/search takes every filter."""

    dataset_id: Uuid | None = None
    status: SampleStatus | None = None
    name_contains: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    external_id: Id | None = None
    tag: Tag | None = None
    sort: Sort = "-priority"


class SamplePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Sample]
    next_cursor: str | None = None
    total: int | None = None  # when asked for; a lower bound when total_is_exact is false
    total_is_exact: bool = False


# -- saved views --------------------------------------------------------------------------------------

ViewKind = Literal["filter", "items"]


class CreateView(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A view is either a saved `filter` (its samples change as samples do) or, without one, an
    explicit set of samples, starting with `sample_ids` and changed with the items endpoints."""

    name: ViewName
    description: Description = ""
    filter: SampleFilter | None = None
    sample_ids: Ids | None = None
    sort: Sort = "-priority"


class CreateViewRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    view: CreateView


class UpdateView(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields left out stay; `filter` only on filter views; `version`, when given, must match (else 409)."""

    name: ViewName | None = None
    description: Description | None = None
    filter: SampleFilter | None = None
    sort: Sort | None = None
    version: int | None = None


class UpdateViewRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    view_id: str
    changes: UpdateView


class ViewRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    view_id: str


class ListViews(Page, frozen=True, kw_only=True):
    """Query parameters of listing saved views."""


class ListViewsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    page: ListViews


class ViewItems(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sample_ids: Ids


class ViewItemsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    view_id: str
    items: ViewItems


class RunView(SamplePaging, frozen=True, kw_only=True):
    """Query parameters of running a view; `sort` defaults to the view's own."""

    sort: Sort | None = None


class RunViewRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    view_id: str
    page: RunView


class View(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    name: str
    description: str
    kind: ViewKind
    filter: SampleFilter | None  # for filter views
    item_count: int | None  # for item views
    sort: Sort
    created_by: str  # user id, or API key id for keys without a user
    version: int
    created_at: datetime
    updated_at: datetime


class ViewPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[View]
    next_cursor: str | None = None


class ViewUpdated(msgspec.Struct, frozen=True, kw_only=True):
    view: View
    changed: list[str]  # e.g. ["name"], or ["items"] when samples were added or removed


class ViewDeleted(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    name: str
