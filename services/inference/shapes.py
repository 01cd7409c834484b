"""A model's decoded output -> predictions in the shapes labels have, with the schema's ids, and the label
an auto-label job writes from them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as coco_mask

from proto.annotation import BoxShape, Label, LabelInput, MaskShape, ObjectInput, Rle
from proto.inference import PredictedObject, PredictedTag, Predictions, Thresholds
from proto.schema import LabelSchema
from services.inference.versions import ServedVersion
from shared.predictions import Prediction


@dataclass(frozen=True)
class Vocabulary:
    """The schema's active names -> ids: label classes, and tag groups with their tags."""

    classes: dict[str, str]
    groups: dict[str, tuple[str, dict[str, str]]]

    @classmethod
    def of(cls, schema: LabelSchema) -> Vocabulary:
        return cls(
            classes={c.name: c.id for c in schema.label_classes if not c.archived},
            groups={
                g.name: (g.id, {t.name: t.id for t in g.tags if not t.archived})
                for g in schema.tag_groups
                if not g.archived
            },
        )

    def tags_of(self, groups: list[str]) -> set[str]:
        """Every tag id of these groups."""
        return {tag_id for group in groups for tag_id in self.groups.get(group, ("", {}))[1].values()}

    def tag(self, group: str, tag: str, confidence: float) -> PredictedTag:
        group_id, tags = self.groups.get(group, (None, {}))
        return PredictedTag(group=group, group_id=group_id, tag=tag, tag_id=tags.get(tag), confidence=confidence)


def predictions(
    served: ServedVersion, prediction: Prediction, size: tuple[int, int], vocabulary: Vocabulary, thresholds: Thresholds
) -> Predictions:
    """`size` is the image's (height, width); thresholds not applied by decoding (tags, classes) apply here."""
    height, width = size
    objects: list[PredictedObject] = []
    tags: list[PredictedTag] = []
    spec = served.spec
    if served.family == "detection":
        for box, index, score in zip(prediction.boxes, prediction.box_classes, prediction.box_scores, strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            if x1 <= x0 or y1 <= y0:  # clipped to nothing at the image's edge
                continue
            name = spec.classes[int(index)]
            objects.append(
                PredictedObject(
                    class_id=vocabulary.classes.get(name),
                    class_name=name,
                    confidence=round(float(score), 4),
                    shape=BoxShape(box=(x0, y0, x1, y1)),
                )
            )
    elif served.family == "segmentation" and prediction.mask is not None:
        for value in np.unique(prediction.mask):
            if value == 0:
                continue
            name = spec.classes[int(value) - 1]
            objects.append(
                PredictedObject(
                    class_id=vocabulary.classes.get(name),
                    class_name=name,
                    confidence=None,
                    shape=MaskShape(rle=rle(prediction.mask == value)),
                )
            )
    elif served.family == "tagging":
        for (group, values), value, score in zip(spec.tag_groups, prediction.tags, prediction.tag_scores, strict=True):
            if score >= thresholds.confidence:
                tags.append(vocabulary.tag(group, values[value], round(score, 4)))
    elif prediction.label is not None and prediction.score is not None and prediction.score >= thresholds.confidence:
        tags.append(vocabulary.tag(served.tag_group or "", spec.classes[prediction.label], round(prediction.score, 4)))
    return Predictions(
        model=served.model,
        version=served.version,
        family=served.family,
        width=width,
        height=height,
        objects=objects,
        tags=tags,
    )


def rle(binary: np.ndarray) -> Rle:
    """An H×W boolean mask as COCO's compressed RLE."""
    encoded = coco_mask.encode(np.asfortranarray(binary.astype(np.uint8)))
    return Rle(size=(int(encoded["size"][0]), int(encoded["size"][1])), counts=encoded["counts"].decode("ascii"))


def label_input(found: Predictions, current: Label, predicted_tags: set[str]) -> LabelInput:
    """The label an auto-label job writes over `current` (version 0 when there is none): PRELABELED, with the
    part its model predicts replaced and the rest kept. A detector or segmentor replaces the objects and keeps
    the tags and image attributes; a tagger or classifier replaces the tags of the groups it predicts
    (`predicted_tags`: every tag id of those groups) and keeps the objects and other tags. So a detector's
    and a tagger's jobs into one labelset add up. Names the schema no longer has are left out."""
    objects = [
        ObjectInput(class_id=uuid.UUID(o.class_id), shape=o.shape, confidence=o.confidence)
        for o in found.objects
        if o.class_id is not None
    ]
    tags = [uuid.UUID(t.tag_id) for t in found.tags if t.tag_id is not None]
    if found.family in ("tagging", "classification"):
        objects = [
            ObjectInput(
                id=uuid.UUID(o.id),
                class_id=uuid.UUID(o.class_id),
                shape=o.shape,
                z_index=o.z_index,
                attributes=o.attributes,
                confidence=o.confidence,
                external_id=o.external_id,
            )
            for o in current.objects
        ]
        tags = [uuid.UUID(t) for t in current.tag_class_ids if t not in predicted_tags] + tags
    else:
        tags = [uuid.UUID(t) for t in current.tag_class_ids]
    return LabelInput(
        status="PRELABELED", objects=objects, tag_class_ids=tags, attributes=current.attributes, version=current.version
    )


def has_part(current: Label, family: str, predicted_tags: set[str]) -> bool:
    """Whether the label already holds what a model of this family would write."""
    if family in ("tagging", "classification"):
        return any(t in predicted_tags for t in current.tag_class_ids)
    return bool(current.objects)
