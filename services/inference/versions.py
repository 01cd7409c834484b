"""Which model version serves a request or job, and what decoding its outputs needs, asked of training."""

from __future__ import annotations

from dataclasses import dataclass

from proto import subjects
from proto.common import Caller
from proto.inference import ModelChoice
from proto.training import Family, Model, ModelVersion, ProjectScope, VersionRef
from proto.training import ModelRef as TrainingModelRef
from shared.errors import LoupeError, conflict, invalid
from shared.predictions import TaskSpec
from shared.service import Runtime


@dataclass(frozen=True)
class ServedVersion:
    model: str
    version: int
    family: Family
    triton_model: str
    image_size: int
    spec: TaskSpec
    # Classification predicts the values of one tag group, written as tags of that group.
    tag_group: str | None = None

    @property
    def space(self) -> str:
        """The name of its embedding space in the catalog."""
        return f"{self.model}:{self.version}"


def served(version: ModelVersion) -> ServedVersion:
    groups = tuple((group.name, tuple(group.values)) for group in version.tag_groups)
    return ServedVersion(
        model=version.model,
        version=version.version,
        family=version.family,
        triton_model=version.triton_model,
        image_size=version.config.image_size,
        spec=TaskSpec(
            family=version.family,
            classes=tuple(version.classes) if version.family != "tagging" else (),
            tag_groups=groups if version.family == "tagging" else (),
        ),
        tag_group=groups[0][0] if version.family == "classification" and groups else None,
    )


async def resolve(
    rt: Runtime, project_id: str, choice: ModelChoice, caller: Caller, path: str = "$.model"
) -> ServedVersion:
    """The version `choice` names (see proto/inference.py), checked servable."""
    if choice.model is None:
        models = (await rt.nats.request(subjects.LIST_MODELS, ProjectScope(project_id=project_id), caller=caller)).items
        active = [m for m in models if m.family == choice.family and m.active_version is not None]
        if not active:
            raise conflict(
                f"the project has no active {choice.family} model: train one (POST …/training/runs) or name "
                "a model and version",
                path=path,
            )
        model: Model = active[0]
    else:
        try:
            model = await rt.nats.request(
                subjects.GET_MODEL, TrainingModelRef(project_id=project_id, model=choice.model), caller=caller
            )
        except LoupeError as error:
            if error.code == "not_found":
                raise invalid(f"the project has no model {choice.model!r}", path=f"{path}.model") from None
            raise
        if model.family != choice.family:
            raise invalid(f"model {model.name!r} is a {model.family} model, not {choice.family}", path=f"{path}.family")
    number = choice.version or model.active_version or model.latest_version
    if number is None:
        raise conflict(f"model {model.name!r} has no version yet: wait for its training run", path=path)
    try:
        version: ModelVersion = await rt.nats.request(
            subjects.GET_MODEL_VERSION,
            VersionRef(project_id=project_id, model=model.name, version=str(number)),
            caller=caller,
        )
    except LoupeError as error:
        if error.code == "not_found":
            raise invalid(f"model {model.name!r} has no version {number}", path=f"{path}.version") from None
        raise
    if version.weights_deleted:
        raise conflict(f"version {number} of {model.name!r} has no weights any more; name another", path=path)
    return served(version)
