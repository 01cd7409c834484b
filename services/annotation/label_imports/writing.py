"""The labels stage of a label import: each parsed image found among the samples ingest made, its names
(classes, tags, attributes) turned into the project's ids, and its label written through annotation's own
write path, a batch of images per transaction with their import_items rows."""

from __future__ import annotations

import asyncio
import posixpath
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable

import asyncpg
import msgspec

from proto import subjects
from proto.annotation import LabelInput, LabelStatus, ObjectInput
from proto.releases import ImportItem
from proto.schema import CreateLabelClass, CreateSchemaItem, LabelSchema
from services.annotation import labels, sample_facts
from services.annotation.formats.imported import ImportedImage
from services.annotation.label_imports.archive import Upload, parse
from services.annotation.label_imports.images import registers_by_hash
from services.annotation.label_imports.records import COUNTS, ITEM_COLUMNS, caller_of
from services.annotation.refs import label_schema
from services.annotation.validation import SchemaIndex
from shared.errors import LoupeError, invalid
from shared.service import Runtime

SAMPLES_WAIT_S = 60.0  # how long the samples ingest made may take to reach annotation's read model
SAMPLES_POLL_S = 0.5
LABEL_BATCH = 200  # images per transaction


class ImageIndex:
    """The images of an import by the names annotation files give them: a path is found by its whole
    or by its end (`a.jpg` finds `images/a.jpg`), and a name with leading directories the images do
    not have finds them by its end too. YOLO names images without their extension."""

    def __init__(self, keys: Iterable[str], *, without_extension: bool) -> None:
        self._by_tail: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            parts = (posixpath.splitext(key)[0] if without_extension else key).split("/")
            for i in range(len(parts)):
                self._by_tail["/".join(parts[i:])].append(key)

    def find(self, name: str) -> list[str]:
        """The keys the name may mean: one when it is found, none or several when it is not."""
        parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
        for i in range(len(parts)):
            found = self._by_tail.get("/".join(parts[i:]))
            if found:
                return found
        return []


class Names:
    """The project's active label classes, tags and attributes by name, to turn an imported image into
    a label. Class names match case-insensitively, as the schema keeps them unique."""

    def __init__(self, schema: LabelSchema) -> None:
        self.classes = {c.name.lower(): c.id for c in schema.label_classes if not c.archived}
        self.tags = {t.name: t.id for g in schema.tag_groups if not g.archived for t in g.tags if not t.archived}
        self.attributes = {a.name: a.id for a in schema.attributes if not a.archived}

    def label(self, image: ImportedImage, status: LabelStatus) -> LabelInput:
        objects = []
        for i, obj in enumerate(image.objects):
            class_id = self.classes.get(obj.class_name.lower())
            if class_id is None:
                raise invalid(
                    f"object {i}: the project has no label class {obj.class_name!r}; create it, or import "
                    "with create_classes",
                    path=f"$.objects[{i}].class_id",
                )
            objects.append(
                ObjectInput(
                    class_id=uuid.UUID(class_id),
                    shape=obj.shape,
                    z_index=obj.z_index,
                    confidence=obj.confidence,
                    external_id=obj.external_id,
                    attributes=self._attributes(
                        obj.attributes, f"object {i} ({obj.class_name})", f"$.objects[{i}].attributes"
                    ),
                )
            )
        tags = []
        for i, name in enumerate(image.tags):
            if name not in self.tags:
                raise invalid(f"the project has no tag {name!r}; add it to a tag group first", path=f"$.tags[{i}]")
            tags.append(uuid.UUID(self.tags[name]))
        return LabelInput(
            status=status,
            score=image.score,
            objects=objects,
            tag_class_ids=tags,
            attributes=self._attributes(image.attributes, "the image", "$.attributes"),
        )

    def _attributes(self, values: dict, about: str, path: str) -> dict:
        by_id = {}
        for name, value in values.items():
            if name not in self.attributes:
                raise invalid(f"{about}: the project has no attribute {name!r}; create it first", path=f"{path}.{name}")
            by_id[self.attributes[name]] = value
        return by_id


class IngestedImages:
    """What ingest made of the import's images (import_images rows), found by the names the file gives
    them, or by their content hash when they were registered by it."""

    def __init__(self, rows: list[asyncpg.Record], *, by_hash: bool, yolo: bool, where: str) -> None:
        self.rows = {r["key"]: r for r in rows}
        self.by_hash = by_hash
        self.index = ImageIndex(self.rows, without_extension=yolo)
        self.where = where  # where the images were looked for, for messages

    def matches(self, name: str, content_hash: str | None = None) -> list[asyncpg.Record]:
        if self.by_hash:
            return [self.rows[content_hash]] if content_hash in self.rows else []
        return [self.rows[key] for key in self.index.find(name)]

    def find(self, image: ImportedImage) -> asyncpg.Record | ImportItem:
        """The image's row, or its failed item when none or several match."""
        found = self.matches(image.file_name, image.content_hash)
        if len(found) == 1:
            return found[0]
        failed = ImportItem(index=0, name=image.file_name, outcome="FAILED")
        if found:
            keys = ", ".join(r["key"] for r in found[:5])
            return msgspec.structs.replace(
                failed,
                error_code="image_ambiguous",
                error=(
                    f"several images match {image.file_name!r} {self.where} ({keys}); name it by its whole path in the "
                    "annotation file"
                ),
            )
        return msgspec.structs.replace(
            failed, error_code="image_missing", error=f"no image matches {image.file_name!r} {self.where}"
        )


async def write_labels(rt: Runtime, row: asyncpg.Record, upload: Upload, parsed: list[ImportedImage]) -> None:
    by_hash = registers_by_hash(row, upload)
    images = IngestedImages(
        await rt.db.fetch(
            "SELECT key, sample_id, error_code, error FROM import_images WHERE import_id = $1", row["id"]
        ),
        by_hash=by_hash,
        yolo=row["format"] == "yolo",
        where="by its content hash among Loupe's media"
        if by_hash
        else "among the images of the zip"
        if upload.images
        else "under the `images` prefix",
    )
    facts = await registered_facts(rt, row, {r["sample_id"] for r in images.rows.values() if r["sample_id"]})
    if row["format"] == "yolo":

        def sizes(name: str) -> tuple[int, int] | None:
            found = images.matches(name)
            fact = facts.get(found[0]["sample_id"]) if len(found) == 1 else None
            return (fact["width"], fact["height"]) if fact else None

        parsed = await asyncio.to_thread(parse, "yolo", row["labelset"], upload.annotations, sizes)
    schema = await create_missing_classes(
        rt, row, parsed, await label_schema(rt, str(row["project_id"]), caller_of(row))
    )
    checker, names = SchemaIndex.from_schema(schema), Names(schema)
    scope = msgspec.structs.replace(
        await labels.scope_of(rt.db, str(row["project_id"]), row["labelset"], None), actor=row["created_by"]
    )
    done = {r["idx"] for r in await rt.db.fetch("SELECT idx FROM import_items WHERE import_id = $1", row["id"])}
    await rt.db.execute("UPDATE imports SET images = $2 WHERE id = $1", row["id"], len(parsed))
    for begin in range(0, len(parsed), LABEL_BATCH):
        batch = [(i, image) for i, image in enumerate(parsed[begin : begin + LABEL_BATCH], begin) if i not in done]
        if not batch:
            continue
        async with rt.db.acquire() as conn, conn.transaction():
            items = []
            for i, image in batch:
                found = images.find(image)
                item = (
                    found
                    if isinstance(found, ImportItem)
                    else await write_image_label(conn, scope, checker, names, row["format"], image, found, facts)
                )
                items.append(msgspec.structs.replace(item, index=i))
            await save_items(conn, row["id"], items)


async def save_items(conn: asyncpg.Connection, import_id: uuid.UUID, items: list[ImportItem]) -> None:
    """The items' report rows, and the import's counts so far."""
    await conn.copy_records_to_table(
        "import_items",
        columns=("import_id", *ITEM_COLUMNS.split(", ")),
        records=[
            (
                import_id,
                item.index,
                item.name,
                item.outcome,
                item.sample_id and uuid.UUID(item.sample_id),
                item.objects,
                item.error_code,
                item.error,
            )
            for item in items
        ],
    )
    await conn.execute(
        f"UPDATE imports i SET imported = c.imported, failed = c.failed, objects = c.objects "
        f"FROM ({COUNTS}) c WHERE i.id = $1",
        import_id,
    )


async def write_image_label(
    conn: asyncpg.Connection,
    scope: labels.Scope,
    checker: SchemaIndex,
    names: Names,
    fmt: str,
    image: ImportedImage,
    found: asyncpg.Record,
    facts: dict[uuid.UUID, asyncpg.Record],
) -> ImportItem:
    """Write one image's label in a savepoint; a problem with it fails only this image."""
    item = ImportItem(
        index=0, name=image.file_name, outcome="FAILED", sample_id=found["sample_id"] and str(found["sample_id"])
    )
    if found["sample_id"] is None:
        return msgspec.structs.replace(item, error_code=found["error_code"], error=found["error"])
    fact = facts.get(found["sample_id"])
    if fact is None:
        return msgspec.structs.replace(
            item,
            error_code="sample_missing",
            error=(
                f"ingest made sample {found['sample_id']}, but the catalog did not register it within "
                f"{SAMPLES_WAIT_S:.0f} s; import the file again"
            ),
        )
    if fmt == "native" and image.status is None:  # the sample has no label in this labelset
        return msgspec.structs.replace(item, outcome="IMPORTED")
    try:
        if image.width is not None and (image.width, image.height) != (fact["width"], fact["height"]):
            raise invalid(
                f"the file gives the image as {image.width}×{image.height}, but it is {fact['width']}×"
                f"{fact['height']}; the annotations would not fit it",
                path="$.width",
            )
        body = names.label(image, image.status or "LABELED")
        async with conn.transaction():
            await labels.replace_label(conn, scope, checker, fact, body, workflow=False)
    except LoupeError as exc:
        return msgspec.structs.replace(item, error_code=exc.code, error=exc.message)
    return msgspec.structs.replace(item, outcome="IMPORTED", objects=len(body.objects))


async def registered_facts(
    rt: Runtime, row: asyncpg.Record, sample_ids: set[uuid.UUID]
) -> dict[uuid.UUID, asyncpg.Record]:
    """The facts of the samples ingest made. The catalog registers them from ingest's event and
    annotation's read model learns them from the catalog's, so they may lag: wait a while, then ask
    the catalog for those still missing."""
    found: dict[uuid.UUID, asyncpg.Record] = {}
    deadline = time.monotonic() + SAMPLES_WAIT_S
    while True:
        rows = await rt.db.fetch(
            f"SELECT {sample_facts.COLUMNS} FROM samples WHERE id = ANY($1::uuid[]) AND project_id = $2",
            list(sample_ids - found.keys()),
            row["project_id"],
        )
        found.update((r["id"], r) for r in rows)
        if len(found) == len(sample_ids) or time.monotonic() > deadline:
            break
        await asyncio.sleep(SAMPLES_POLL_S)
    async with rt.db.acquire() as conn:
        for sample in sample_ids - found.keys():
            try:
                found.update(await sample_facts.load(rt, conn, row["project_id"], [sample], caller_of(row)))
            except LoupeError as exc:
                if exc.code != "not_found":
                    raise
    return found


async def create_missing_classes(
    rt: Runtime, row: asyncpg.Record, parsed: list[ImportedImage], schema: LabelSchema
) -> LabelSchema:
    """The schema, with the classes the file names and the project lacks created when the import asks
    for it (each recorded as it is made, so a redelivery neither repeats nor forgets one)."""
    known = {c.name.lower() for c in schema.label_classes if not c.archived}
    missing: dict[str, str] = {}  # lower case → the file's first spelling
    for image in parsed:
        for obj in image.objects:
            if obj.class_name.lower() not in known:
                missing.setdefault(obj.class_name.lower(), obj.class_name)
    if not missing or not row["create_classes"]:
        return schema
    for name in missing.values():
        try:
            await rt.nats.request(
                subjects.LABEL_CLASS.create,
                CreateSchemaItem(project_id=str(row["project_id"]), item=CreateLabelClass(name=name)),
                caller=caller_of(row),
            )
        except LoupeError:
            # Another import into the project (run by another replica) may have made it meanwhile: then it is
            # there to use, and it is that import's to record.
            current = await label_schema(rt, str(row["project_id"]), caller_of(row))
            if name.lower() not in {c.name.lower() for c in current.label_classes if not c.archived}:
                raise
            continue
        await rt.db.execute(
            "UPDATE imports SET classes_created = array_append(classes_created, $2) WHERE id = $1", row["id"], name
        )
    return await label_schema(rt, str(row["project_id"]), caller_of(row))
