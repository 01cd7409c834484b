"""Each project's label schema version in the JetStream key-value bucket `subjects.SCHEMA_VERSIONS`,
raised after every schema edit commits and before the edit is answered. Annotation validates label
writes with its own copy of the schema and reads this version to know whether that copy is current,
so a class archived before a write is refused by that write without the write asking the catalog.

The version only ever goes up: two edits of one project commit in order, but may reach the bucket in
either, so a version is written only over an older one (compare-and-set on the key's revision).
"""

from __future__ import annotations

import logging
import uuid

import nats.errors
import nats.js.errors

from proto import subjects
from shared.bus import Bus

log = logging.getLogger(__name__)


async def raise_to(bus: Bus, project: uuid.UUID, version: int) -> None:
    """Make the bucket say `version` for the project unless it says a newer one already. A failure is
    logged, not raised: the edit is committed, and annotation still learns of it from its events."""
    try:
        versions = await bus.js.key_value(subjects.SCHEMA_VERSIONS)
        key, value = str(project), str(version).encode()
        while True:
            try:
                held = await versions.get(key)
            except nats.js.errors.KeyNotFoundError:
                held = None
            if held is not None and int(held.value or b"0") >= version:
                return
            try:
                if held is None:
                    await versions.create(key, value)
                else:
                    await versions.update(key, value, last=held.revision)
                return
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # another edit wrote in between: read again
    except (nats.errors.Error, TimeoutError) as error:
        log.warning("could not publish version %d of the label schema of project %s: %r", version, project, error)
