"""Imports of labelled data (COCO, YOLO, Pascal VOC, native releases), run as a job that reports what
became of each image.

The client creates an import, PUTs one file to its presigned URL (a zip of images and annotations, or
the annotation file alone) and starts it. The job then goes through stages, kept on the imports row
so that a redelivered job continues where the last one stopped (the scratch directory is not kept:
each delivery downloads and extracts the file again):
- upload: the file is parsed first, so a malformed one fails before any image is ingested. The
  images go through ingest: the zip's are put under the import's prefix of the releases bucket and
  ingest imports that prefix, or the `images` source given (a prefix on the user's S3, whose keys
  ingest sealed when the import was created, so they are never kept in the clear and annotation needs
  no LOUPE_SECRETS_KEY); a native file without images registers the organisation's media by content hash.
- images: once ingest's run finished, its report maps each image's path (or hash) to its sample,
  kept in import_images.
- labels: class, tag and attribute names become the project's ids (missing classes are created when
  asked), and each image's label is written in a savepoint, so that a bad annotation fails only its
  image; a batch of images per transaction, with their import_items rows, so a redelivery skips the
  images already reported.
"""

from __future__ import annotations

import asyncio
import mimetypes
import posixpath
import shutil
import tempfile
import time
import uuid
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

import asyncpg
import msgspec

from proto import subjects
from proto.annotation import GROUND_TRUTH, LabelInput, LabelStatus, ObjectInput
from proto.common import Caller
from proto.ingest import (ImportBucket, ImportBucketRequest, ListRunItems, ListRunItemsRequest, MediaRef,
                          RegisterMedia, RegisterMediaRequest, RunRef)
from proto.releases import (CreateImportRequest, ImageSource, Import, ImportItem, ImportItemPage, ImportRef,
                            ListImportItemsRequest, RunImport)
from proto.samples import DatasetRef
from proto.schema import CreateLabelClass, CreateSchemaItem, LabelSchema
from services.annotation import labels, sample_facts
from services.annotation.formats import coco, native, voc, yolo
from services.annotation.formats.imported import ImportedImage
from services.annotation.refs import actor, label_schema, parse_uuid, service_caller
from services.annotation.validation import SchemaIndex
from shared import outbox
from shared.bus import RequestContext
from shared.errors import LoupeError, conflict, invalid, not_found
from shared.service import Runtime

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MAX_EXTRACTED_BYTES = 4 << 30
RUN_FINISHED = ("SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED")
POLL_S = 0.5
SAMPLES_WAIT_S = 60.0  # how long the samples ingest made may take to reach annotation's read model
REGISTER_BATCH = 10_000  # RegisterMedia's limit
LABEL_BATCH = 200  # images per transaction
PUT_CONCURRENCY = 16
Sizes = Callable[[str], tuple[int, int] | None]

COLUMNS = ("id, project_id, org_id, dataset_id, labelset, format, images_source, create_classes, state, stage, "
           "ingest_run_id, images, imported, failed, objects, classes_created, error, created_by, created_at, "
           "finished_at")
ITEM_COLUMNS = "idx, name, outcome, sample_id, objects, error_code, error"
COUNTS = ("SELECT count(*) AS images, count(*) FILTER (WHERE outcome = 'IMPORTED') AS imported, "
          "count(*) FILTER (WHERE outcome = 'FAILED') AS failed, coalesce(sum(objects), 0) AS objects "
          "FROM import_items WHERE import_id = $1")
encode = msgspec.json.Encoder().encode


def upload_key(row: asyncpg.Record) -> str:
    return f"{row['project_id']}/imports/{row['id']}/upload"


def to_import(rt: Runtime, row: asyncpg.Record) -> Import:
    waiting = row["state"] == "WAITING"
    return Import(id=str(row["id"]), project_id=str(row["project_id"]), dataset_id=str(row["dataset_id"]),
                  labelset=row["labelset"], format=row["format"], state=row["state"], images=row["images"],
                  imported=row["imported"], failed=row["failed"], objects=row["objects"],
                  classes_created=list(row["classes_created"]), error=row["error"], created_at=row["created_at"],
                  finished_at=row["finished_at"],
                  upload_url=rt.storage.presigned_put("releases", upload_key(row), rt.settings.upload_url_expiry_s)
                  if waiting else None)


def to_item(row: asyncpg.Record) -> ImportItem:
    return ImportItem(index=row["idx"], name=row["name"], outcome=row["outcome"],
                      sample_id=row["sample_id"] and str(row["sample_id"]), objects=row["objects"],
                      error_code=row["error_code"], error=row["error"])


# -- commands ---------------------------------------------------------------------------------------

async def create(rt: Runtime, request: CreateImportRequest, ctx: RequestContext) -> Import:
    caller = ctx.require_caller()
    project = parse_uuid(request.project_id, "project")
    body = request.body
    dataset = parse_uuid(body.dataset_id, "dataset", "$.dataset_id")
    await rt.nats.request(subjects.GET_DATASET, DatasetRef(project_id=request.project_id, dataset_id=body.dataset_id),
                          caller=caller)
    if body.labelset != GROUND_TRUTH and not await rt.db.fetchval(
            "SELECT true FROM labelsets WHERE project_id = $1 AND name = $2", project, body.labelset):
        raise invalid(f"the project has no labelset {body.labelset!r}; create it first", path="$.labelset")
    images = await sealed(rt, body.images, caller) if body.images else None
    row = await rt.db.fetchrow(
        f"INSERT INTO imports (project_id, org_id, dataset_id, labelset, format, images_source, create_classes, "
        f"created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}",
        project, uuid.UUID(caller.org_id), dataset, body.labelset, body.format,
        encode(images).decode() if images else None, body.create_classes, actor(caller))
    return to_import(rt, row)


class KeptImageSource(ImageSource, frozen=True, kw_only=True):
    """An `images` source as the imports row keeps it: its keys only as ingest sealed them, in `credentials`."""

    credentials: str = ""  # "" on imports made before the keys were kept


async def sealed(rt: Runtime, images: ImageSource, caller: Caller) -> KeptImageSource:
    """The source checked and its keys sealed by ingest, which alone holds LOUPE_SECRETS_KEY: ingest's error
    names the field below `$.images`."""
    try:
        keys = await rt.nats.request(subjects.SEAL_BUCKET_KEYS, images, caller=caller)
    except LoupeError as exc:
        if "path" not in exc.details:
            raise
        raise LoupeError(exc.code, exc.message, **{**exc.details, "path": "$.images" + exc.details["path"][1:]}
                         ) from None
    return KeptImageSource(**{**msgspec.structs.asdict(images), "access_key": "", "secret_key": ""},
                           credentials=keys.credentials)


async def fetch(conn: asyncpg.Connection | asyncpg.Pool, request: ImportRef) -> asyncpg.Record:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM imports WHERE id = $1 AND project_id = $2",
                              parse_uuid(request.import_id, "import"), parse_uuid(request.project_id, "project"))
    if row is None:
        raise not_found("import", request.import_id)
    return row


async def start(rt: Runtime, request: ImportRef, ctx: RequestContext) -> Import:
    row = await fetch(rt.db, request)
    if row["state"] != "WAITING":
        return to_import(rt, row)  # started already
    if not await rt.storage.exists("releases", upload_key(row)):
        raise conflict("nothing was uploaded yet: upload the file to upload_url first, then start the import",
                       path="upload_url")
    async with rt.db.acquire() as conn, conn.transaction():
        started = await conn.fetchrow(f"UPDATE imports SET state = 'PENDING' WHERE id = $1 AND state = 'WAITING' "
                                      f"RETURNING {COLUMNS}", row["id"])
        if started is None:  # started by a concurrent call
            return to_import(rt, await fetch(conn, request))
        await outbox.submit_job(conn, subjects.RELEASE_JOB, RunImport(import_id=str(row["id"])), str(row["id"]))
    return to_import(rt, started)


async def get(rt: Runtime, request: ImportRef, ctx: RequestContext) -> Import:
    return to_import(rt, await fetch(rt.db, request))


async def list_items(rt: Runtime, request: ListImportItemsRequest, ctx: RequestContext) -> ImportItemPage:
    row = await fetch(rt.db, ImportRef(project_id=request.project_id, import_id=request.import_id))
    query = request.query
    rows = await rt.db.fetch(
        f"SELECT {ITEM_COLUMNS}, count(*) OVER () AS total FROM import_items "
        "WHERE import_id = $1 AND ($2::text IS NULL OR outcome = $2) ORDER BY idx LIMIT $3 OFFSET $4",
        row["id"], query.outcome, query.limit, query.offset)
    total = rows[0]["total"] if rows else await rt.db.fetchval(
        "SELECT count(*) FROM import_items WHERE import_id = $1 AND ($2::text IS NULL OR outcome = $2)",
        row["id"], query.outcome)
    return ImportItemPage(items=[to_item(r) for r in rows], total=total)


# -- the uploaded file ------------------------------------------------------------------------------

class Upload(msgspec.Struct, frozen=True):
    annotations: Path  # the annotation file (COCO, native) or the dataset's directory (YOLO, VOC)
    images: dict[str, Path]  # the zip's images by their path in it


async def fetch_upload(rt: Runtime, row: asyncpg.Record, scratch: Path) -> Upload:
    file = scratch / "upload"
    await rt.storage.get_file("releases", upload_key(row), file)
    if not zipfile.is_zipfile(file):
        if row["format"] in ("yolo", "voc"):
            raise invalid(f"a {row['format'].upper()} import is a zip of the dataset's directory; the upload is "
                          "not a zip", file="upload", path="upload")
        named = file.rename(scratch / ("release.jsonl" if row["format"] == "native" else coco.FILE_NAME))
        return Upload(annotations=named, images={})
    root = scratch / "files"
    await asyncio.to_thread(extract, file, root)
    images = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
              if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
    return Upload(annotations=locate(row["format"], root), images=images)


def extract(archive: Path, root: Path) -> None:
    """Extract the zip below `root`, refusing members that would land outside it and archives that
    unpack to more than MAX_EXTRACTED_BYTES. macOS's resource forks are left out."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir() and not _macos_litter(m.filename)]
            if sum(m.file_size for m in members) > MAX_EXTRACTED_BYTES:
                raise invalid(f"the zip unpacks to more than {MAX_EXTRACTED_BYTES >> 30} GiB; split the import",
                              file="upload", path="upload")
            for member in members:
                name = member.filename.replace("\\", "/")
                parts = PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts or ":" in parts[0]:
                    raise invalid(f"the zip member {member.filename!r} would be written outside the archive's "
                                  "directory; zip relative paths only", file=member.filename, path="upload")
                target = root.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise invalid(f"the upload is not a readable zip ({exc})", file="upload", path="upload") from None


def _macos_litter(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return "__MACOSX" in parts or parts[-1].startswith("._")


def locate(fmt: str, root: Path) -> Path:
    """The annotation file (COCO, native) or the dataset directory (VOC, YOLO) in the extracted zip."""
    if fmt == "coco":
        found, what = sorted(root.rglob("*.json")), "one COCO annotation file (*.json)"
    elif fmt == "native":
        found, what = sorted(root.rglob("*.jsonl")), "one native release file (*.jsonl)"
    elif fmt == "voc":
        found, what = _parents(root, "Annotations"), "one `Annotations` directory"
    else:
        found, what = _parents(root, "data.yaml") or _parents(root, yolo.LABELS), "one YOLO dataset (`data.yaml`)"
    if len(found) != 1:
        listed = ", ".join(p.relative_to(root).as_posix() or "." for p in found[:5])
        raise invalid(f"the zip must hold {what}; it holds {len(found)}{': ' + listed if found else ''}",
                      file="upload", path="upload")
    return found[0]


def _parents(root: Path, name: str) -> list[Path]:
    return sorted({p.parent for p in root.rglob(name)})


def parse(fmt: str, labelset: str, annotations: Path, sizes: Sizes) -> list[ImportedImage]:
    if fmt == "coco":
        return list(coco.parse(annotations))
    if fmt == "voc":
        return list(voc.parse(annotations))
    if fmt == "native":
        return list(native.parse(annotations, labelset=labelset))
    return list(yolo.parse(annotations, sizes))


def no_sizes(name: str) -> None:
    """YOLO's sizes before the images are known: the parse checks the dataset's layout only."""
    return None


# -- the job ----------------------------------------------------------------------------------------

async def run(rt: Runtime, job: RunImport) -> None:
    row = await load_row(rt, uuid.UUID(job.import_id))
    if row is None or row["state"] in ("SUCCEEDED", "PARTIAL", "FAILED"):
        return  # deleted since, or a redelivery of a finished job
    await rt.db.execute("UPDATE imports SET state = 'RUNNING' WHERE id = $1", row["id"])
    scratch = Path(tempfile.mkdtemp(prefix="loupe-import-"))
    try:
        upload = await fetch_upload(rt, row, scratch)
        # A thread: parsing is CPU work, and the loop must keep the job's heartbeat going.
        parsed = await asyncio.to_thread(parse, row["format"], row["labelset"], upload.annotations, no_sizes)
        if row["stage"] == "upload":
            await send_images(rt, row, upload, parsed)
            row = await load_row(rt, row["id"])
        if row["stage"] == "images":
            await map_run(rt, row)
            row = await load_row(rt, row["id"])
        await write_labels(rt, row, upload, parsed)
    except LoupeError as exc:
        if exc.code == "unavailable":
            raise  # a service is down: the job is redelivered later and goes on from its stage
        await finish(rt, row, error=exc.message)
        return
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    await finish(rt, row)


async def load_row(rt: Runtime, import_id: uuid.UUID) -> asyncpg.Record | None:
    return await rt.db.fetchrow(f"SELECT {COLUMNS} FROM imports WHERE id = $1", import_id)


def caller_of(row: asyncpg.Record) -> Caller:
    return service_caller(str(row["org_id"]))


def bucket_import(rt: Runtime, row: asyncpg.Record) -> ImportBucketRequest:
    """Ingest's import of the images: from the `images` source given, with its sealed keys, else from the
    import's own prefix of the releases bucket, where the zip's images are staged."""
    target = {"project_id": str(row["project_id"]), "dataset_id": str(row["dataset_id"])}
    if row["images_source"]:
        given = msgspec.structs.asdict(msgspec.json.decode(row["images_source"], type=KeptImageSource))
        keys = given.pop("credentials")
        return ImportBucketRequest(**target, source=ImportBucket(**given), credentials=keys or None)
    return ImportBucketRequest(**target, staged=True, source=ImportBucket(
        bucket=rt.storage.bucket("releases"), prefix=f"{row['project_id']}/imports/{row['id']}/images/"))


def registers_by_hash(row: asyncpg.Record, upload: Upload) -> bool:
    return row["format"] == "native" and not row["images_source"] and not upload.images


async def send_images(rt: Runtime, row: asyncpg.Record, upload: Upload, parsed: list[ImportedImage]) -> None:
    """Hand the images to ingest: a bucket import (stage → images) or a registration by hash, which
    answers at once (stage → labels)."""
    if registers_by_hash(row, upload):
        await register_by_hash(rt, row, parsed)
        await rt.db.execute("UPDATE imports SET stage = 'labels' WHERE id = $1", row["id"])
        return
    if not upload.images and not row["images_source"]:
        raise invalid("the upload has no images: zip them with the annotations, or give `images`, the bucket "
                      "prefix that holds them", path="images")
    request = bucket_import(rt, row)
    if request.staged:
        gate = asyncio.Semaphore(PUT_CONCURRENCY)

        async def put(name: str, path: Path) -> None:
            async with gate:
                await rt.storage.put_file("releases", request.source.prefix + name, path,
                                          mimetypes.guess_type(name)[0] or "application/octet-stream")
        await asyncio.gather(*(put(name, path) for name, path in upload.images.items()))
    ingest_run = await rt.nats.request(subjects.IMPORT_BUCKET, request, caller=caller_of(row))
    await rt.db.execute("UPDATE imports SET ingest_run_id = $2, stage = 'images' WHERE id = $1", row["id"],
                        uuid.UUID(ingest_run.id))


async def register_by_hash(rt: Runtime, row: asyncpg.Record, parsed: list[ImportedImage]) -> None:
    """Make samples of the media Loupe already has, named and described as the file says; hashes a
    previous delivery registered are not sent again."""
    first: dict[str, ImportedImage] = {}
    for image in parsed:
        if image.content_hash:
            first.setdefault(image.content_hash, image)
    done = {r["key"] for r in await rt.db.fetch("SELECT key FROM import_images WHERE import_id = $1", row["id"])}
    todo = [sha for sha in first if sha not in done]
    for begin in range(0, len(todo), REGISTER_BATCH):
        refs = [MediaRef(sha256=sha, name=first[sha].file_name, external_id=first[sha].external_id,
                         metadata=first[sha].metadata) for sha in todo[begin:begin + REGISTER_BATCH]]
        registered = await rt.nats.request(subjects.REGISTER_MEDIA, RegisterMediaRequest(
            project_id=str(row["project_id"]), dataset_id=str(row["dataset_id"]), media=RegisterMedia(items=refs)),
            caller=caller_of(row))
        await save_run_items(rt, row, registered.id, lambda source: source.partition(":")[2])  # `<index>:<sha>`


async def map_run(rt: Runtime, row: asyncpg.Record) -> None:
    """Wait for ingest's bucket run, then keep what it made of each image (stage → labels)."""
    ref = RunRef(project_id=str(row["project_id"]), id=str(row["ingest_run_id"]))
    while (await rt.nats.request(subjects.GET_RUN, ref, caller=caller_of(row))).state not in RUN_FINISHED:
        await asyncio.sleep(POLL_S)
    prefix = bucket_import(rt, row).source.prefix
    await save_run_items(rt, row, ref.id, lambda source: source[len(prefix):].lstrip("/"))
    unlisted = await rt.db.fetchval("SELECT error FROM import_images WHERE import_id = $1 "
                                    "AND error_code = 'listing_failed' LIMIT 1", row["id"])
    if unlisted is not None:  # else every image would only be reported missing
        raise invalid(f"ingest could not list the images: {unlisted}", path="$.images")
    await rt.db.execute("UPDATE imports SET stage = 'labels' WHERE id = $1", row["id"])


async def save_run_items(rt: Runtime, row: asyncpg.Record, run_id: str, key_of: Callable[[str], str]) -> None:
    """Each item of an ingest run as an import_images row, keyed by `key_of` its source."""
    after = -1
    while True:
        page = await rt.nats.request(subjects.LIST_RUN_ITEMS, ListRunItemsRequest(
            project_id=str(row["project_id"]), id=run_id, query=ListRunItems(after=after, limit=1000)),
            caller=caller_of(row))
        made = [item.state in ("CREATED", "DUPLICATE") for item in page.items]
        await rt.db.execute(
            "INSERT INTO import_images (import_id, key, sample_id, error_code, error) "
            "SELECT $1, i.key, i.sample_id, i.code, i.error "
            "FROM unnest($2::text[], $3::uuid[], $4::text[], $5::text[]) AS i (key, sample_id, code, error) "
            "ON CONFLICT DO NOTHING", row["id"], [key_of(item.source) for item in page.items],
            [uuid.UUID(item.sample_id) if ok else None for item, ok in zip(page.items, made, strict=True)],
            [None if ok else item.error_code or item.state.lower() for item, ok in zip(page.items, made, strict=True)],
            [None if ok else item.error or f"ingest left the image {item.state}"
             for item, ok in zip(page.items, made, strict=True)])
        if page.next_after is None:
            return
        after = page.next_after


# -- labels -----------------------------------------------------------------------------------------

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
                raise invalid(f"object {i}: the project has no label class {obj.class_name!r}; create it, or import "
                              "with create_classes", path=f"$.objects[{i}].class_id")
            objects.append(ObjectInput(
                class_id=uuid.UUID(class_id), shape=obj.shape, z_index=obj.z_index, confidence=obj.confidence,
                external_id=obj.external_id,
                attributes=self._attributes(obj.attributes, f"object {i} ({obj.class_name})",
                                            f"$.objects[{i}].attributes")))
        tags = []
        for i, name in enumerate(image.tags):
            if name not in self.tags:
                raise invalid(f"the project has no tag {name!r}; add it to a tag group first", path=f"$.tags[{i}]")
            tags.append(uuid.UUID(self.tags[name]))
        return LabelInput(status=status, score=image.score, objects=objects, tag_class_ids=tags,
                          attributes=self._attributes(image.attributes, "the image", "$.attributes"))

    def _attributes(self, values: dict, about: str, path: str) -> dict:
        by_id = {}
        for name, value in values.items():
            if name not in self.attributes:
                raise invalid(f"{about}: the project has no attribute {name!r}; create it first", path=f"{path}.{name}")
            by_id[self.attributes[name]] = value
        return by_id


class ImportImages:
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
            return msgspec.structs.replace(failed, error_code="image_ambiguous", error=(
                f"several images match {image.file_name!r} {self.where} ({keys}); name it by its whole path in the "
                "annotation file"))
        return msgspec.structs.replace(failed, error_code="image_missing",
                                       error=f"no image matches {image.file_name!r} {self.where}")


async def write_labels(rt: Runtime, row: asyncpg.Record, upload: Upload, parsed: list[ImportedImage]) -> None:
    by_hash = registers_by_hash(row, upload)
    images = ImportImages(
        await rt.db.fetch("SELECT key, sample_id, error_code, error FROM import_images WHERE import_id = $1",
                          row["id"]),
        by_hash=by_hash, yolo=row["format"] == "yolo",
        where="by its content hash among Loupe's media" if by_hash else
        "among the images of the zip" if upload.images else "under the `images` prefix")
    facts = await registered_facts(rt, row, {r["sample_id"] for r in images.rows.values() if r["sample_id"]})
    if row["format"] == "yolo":
        def sizes(name: str) -> tuple[int, int] | None:
            found = images.matches(name)
            fact = facts.get(found[0]["sample_id"]) if len(found) == 1 else None
            return (fact["width"], fact["height"]) if fact else None
        parsed = await asyncio.to_thread(parse, "yolo", row["labelset"], upload.annotations, sizes)
    schema = await create_missing_classes(rt, row, parsed, await label_schema(rt, str(row["project_id"]),
                                                                             caller_of(row)))
    checker, names = SchemaIndex.from_schema(schema), Names(schema)
    scope = msgspec.structs.replace(await labels.scope_of(rt.db, str(row["project_id"]), row["labelset"], None),
                                    actor=row["created_by"])
    done = {r["idx"] for r in await rt.db.fetch("SELECT idx FROM import_items WHERE import_id = $1", row["id"])}
    await rt.db.execute("UPDATE imports SET images = $2 WHERE id = $1", row["id"], len(parsed))
    for begin in range(0, len(parsed), LABEL_BATCH):
        batch = [(i, image) for i, image in enumerate(parsed[begin:begin + LABEL_BATCH], begin) if i not in done]
        if not batch:
            continue
        async with rt.db.acquire() as conn, conn.transaction():
            items = []
            for i, image in batch:
                found = images.find(image)
                item = found if isinstance(found, ImportItem) else await import_one(
                    conn, scope, checker, names, row["format"], image, found, facts)
                items.append(msgspec.structs.replace(item, index=i))
            await save_items(conn, row["id"], items)


async def save_items(conn: asyncpg.Connection, import_id: uuid.UUID, items: list[ImportItem]) -> None:
    """The items' report rows, and the import's counts so far."""
    await conn.copy_records_to_table(
        "import_items", columns=("import_id", *ITEM_COLUMNS.split(", ")),
        records=[(import_id, item.index, item.name, item.outcome, item.sample_id and uuid.UUID(item.sample_id),
                  item.objects, item.error_code, item.error) for item in items])
    await conn.execute(f"UPDATE imports i SET imported = c.imported, failed = c.failed, objects = c.objects "
                       f"FROM ({COUNTS}) c WHERE i.id = $1", import_id)


async def import_one(conn: asyncpg.Connection, scope: labels.Scope, checker: SchemaIndex, names: Names, fmt: str,
                     image: ImportedImage, found: asyncpg.Record, facts: dict[uuid.UUID, asyncpg.Record]
                     ) -> ImportItem:
    """Write one image's label in a savepoint; a problem with it fails only this image."""
    item = ImportItem(index=0, name=image.file_name, outcome="FAILED",
                      sample_id=found["sample_id"] and str(found["sample_id"]))
    if found["sample_id"] is None:
        return msgspec.structs.replace(item, error_code=found["error_code"], error=found["error"])
    fact = facts.get(found["sample_id"])
    if fact is None:
        return msgspec.structs.replace(item, error_code="sample_missing", error=(
            f"ingest made sample {found['sample_id']}, but the catalog did not register it within "
            f"{SAMPLES_WAIT_S:.0f} s; import the file again"))
    if fmt == "native" and image.status is None:  # the sample has no label in this labelset
        return msgspec.structs.replace(item, outcome="IMPORTED")
    try:
        if image.width is not None and (image.width, image.height) != (fact["width"], fact["height"]):
            raise invalid(f"the file gives the image as {image.width}×{image.height}, but it is {fact['width']}×"
                          f"{fact['height']}; the annotations would not fit it", path="$.width")
        body = names.label(image, image.status or "LABELED")
        async with conn.transaction():
            await labels.replace_label(conn, scope, checker, fact, body, workflow=False)
    except LoupeError as exc:
        return msgspec.structs.replace(item, error_code=exc.code, error=exc.message)
    return msgspec.structs.replace(item, outcome="IMPORTED", objects=len(body.objects))


async def registered_facts(rt: Runtime, row: asyncpg.Record, sample_ids: set[uuid.UUID]
                           ) -> dict[uuid.UUID, asyncpg.Record]:
    """The facts of the samples ingest made. The catalog registers them from ingest's event and
    annotation's read model learns them from the catalog's, so they may lag: wait a while, then ask
    the catalog for those still missing."""
    found: dict[uuid.UUID, asyncpg.Record] = {}
    deadline = time.monotonic() + SAMPLES_WAIT_S
    while True:
        rows = await rt.db.fetch(f"SELECT {sample_facts.COLUMNS} FROM samples WHERE id = ANY($1::uuid[]) "
                                 "AND project_id = $2", list(sample_ids - found.keys()), row["project_id"])
        found.update((r["id"], r) for r in rows)
        if len(found) == len(sample_ids) or time.monotonic() > deadline:
            break
        await asyncio.sleep(POLL_S)
    async with rt.db.acquire() as conn:
        for sample in sample_ids - found.keys():
            try:
                found.update(await sample_facts.load(rt, conn, row["project_id"], [sample], caller_of(row)))
            except LoupeError as exc:
                if exc.code != "not_found":
                    raise
    return found


async def create_missing_classes(rt: Runtime, row: asyncpg.Record, parsed: list[ImportedImage],
                                 schema: LabelSchema) -> LabelSchema:
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
        await rt.nats.request(subjects.LABEL_CLASS.create, CreateSchemaItem(
            project_id=str(row["project_id"]), item=CreateLabelClass(name=name)), caller=caller_of(row))
        await rt.db.execute("UPDATE imports SET classes_created = array_append(classes_created, $2) WHERE id = $1",
                            row["id"], name)
    return await label_schema(rt, str(row["project_id"]), caller_of(row))


async def finish(rt: Runtime, row: asyncpg.Record, error: str | None = None) -> None:
    """Settle the state from the items (or the file's error) and announce it."""
    async with rt.db.acquire() as conn, conn.transaction():
        counts = await conn.fetchrow(COUNTS, row["id"])
        if error is None and not counts["images"]:
            error = "the file names no images"
        state = "FAILED" if error or not counts["imported"] else "PARTIAL" if counts["failed"] else "SUCCEEDED"
        done = await conn.fetchrow(
            f"UPDATE imports SET state = $2, stage = 'done', error = $3, images = greatest(images, $4), "
            f"imported = $5, failed = $6, objects = $7, finished_at = now() WHERE id = $1 RETURNING {COLUMNS}",
            row["id"], state, error, counts["images"], counts["imported"], counts["failed"], counts["objects"])
        await outbox.emit(conn, subjects.IMPORT_FINISHED, to_import(rt, done), str(row["project_id"]))


COMMAND_HANDLERS = (
    (subjects.CREATE_IMPORT, create), (subjects.START_IMPORT, start), (subjects.GET_IMPORT, get),
    (subjects.LIST_IMPORT_ITEMS, list_items),
)
