"""Import of a native release (`release.jsonl`, see proto/releases.py): each sample with its label in
one labelset, ids turned into names through the release's own schema (classes, tags, attributes and
selection values) so that the import can resolve them in another project. Samples without a label in
that labelset are yielded without objects and with no status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from proto.annotation import GROUND_TRUTH
from proto.schema import Attribute, LabelSchema
from services.annotation.formats import native_export
from services.annotation.formats.imported import ImportedImage, ImportedObject
from shared.errors import invalid


def parse(path: Path, *, labelset: str = GROUND_TRUTH) -> Iterator[ImportedImage]:
    header, samples = native_export.read(path)
    if labelset not in header.labelsets:
        raise invalid(
            f"{path.name}: the release has no labelset {labelset!r}; it has {header.labelsets}",
            file=path.name,
            path="line 1: $.labelsets",
        )
    names = _Names.of(header.label_schema)
    for number, sample in enumerate(samples, 1):
        where = _Where(path.name, number, sample.name, f"$.labels.{labelset}")
        label = sample.labels.get(labelset)
        objects = (
            []
            if label is None
            else [
                ImportedObject(
                    class_name=names.class_name(obj.class_id, where.at(f"objects[{i}].class_id")),
                    shape=obj.shape,
                    z_index=obj.z_index,
                    confidence=obj.confidence,
                    external_id=obj.external_id,
                    attributes=names.named_attributes(obj.attributes, where.at(f"objects[{i}].attributes")),
                )
                for i, obj in enumerate(label.objects)
            ]
        )
        yield ImportedImage(
            file_name=sample.name,
            width=sample.width,
            height=sample.height,
            objects=objects,
            tags=[]
            if label is None
            else [names.tag(tag_id, where.at(f"tag_class_ids[{i}]")) for i, tag_id in enumerate(label.tag_class_ids)],
            status=label.status if label else None,
            content_hash=sample.content_hash,
            external_id=sample.external_id,
            metadata=sample.metadata,
            score=label.score if label else None,
            attributes={} if label is None else names.named_attributes(label.attributes, where.at("attributes")),
        )


class _Where(msgspec.Struct, frozen=True):
    """A field of a sample of the release, for error messages."""

    file: str
    number: int  # 1-based, among the samples
    name: str
    path: str

    def at(self, field: str) -> _Where:
        return _Where(self.file, self.number, self.name, f"{self.path}.{field}")

    def error(self, problem: str) -> Exception:
        return invalid(
            f"{self.file}: sample {self.number} ({self.name}): `{self.path}` {problem}; the file must "
            "use only the ids of its header's label_schema",
            file=self.file,
            sample=self.number,
            path=self.path,
        )


class _Names(msgspec.Struct, frozen=True):
    """The release schema's names by id."""

    class_names: dict[str, str]
    tag_names: dict[str, str]
    attributes_by_id: dict[str, Attribute]
    value_texts: dict[str, str]  # of selection values

    @classmethod
    def of(cls, schema: LabelSchema) -> _Names:
        return cls(
            class_names={c.id: c.name for c in schema.label_classes},
            tag_names={t.id: t.name for group in schema.tag_groups for t in group.tags},
            attributes_by_id={a.id: a for a in schema.attributes},
            value_texts={v.id: v.value for a in schema.attributes for v in a.values},
        )

    def class_name(self, class_id: str, where: _Where) -> str:
        if class_id not in self.class_names:
            raise where.error(f"is {class_id!r}, which is not a label class")
        return self.class_names[class_id]

    def tag(self, tag_id: str, where: _Where) -> str:
        if tag_id not in self.tag_names:
            raise where.error(f"is {tag_id!r}, which is not a tag class")
        return self.tag_names[tag_id]

    def named_attributes(self, values: dict[str, Any], where: _Where) -> dict[str, Any]:
        """The values by attribute name, selections by their text (a value given as text stays)."""
        named = {}
        for attribute_id, value in values.items():
            attribute = self.attributes_by_id.get(attribute_id)
            if attribute is None:
                raise where.at(attribute_id).error("names no attribute")
            if attribute.type == "SELECTION":
                value = self.value_texts.get(value, value)
            elif attribute.type == "MULTIPLE_SELECTION":
                value = [self.value_texts.get(v, v) for v in value]
            named[attribute.name] = value
        return named
