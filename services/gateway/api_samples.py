"""REST operations for datasets, samples and their media."""

from __future__ import annotations

from proto import samples, subjects
from services.gateway.operations import ByHand, Operation, PathParams, route

DATASETS = "/v1/projects/{project_id}/datasets"
DATASET = DATASETS + "/{dataset_id}"
SAMPLES = "/v1/projects/{project_id}/samples"
SAMPLE = SAMPLES + "/{sample_id}"


def media_ref(variant: samples.MediaVariant) -> ByHand:
    return ByHand(
        lambda params, query, body: samples.SampleMediaRef(
            project_id=params["project_id"], sample_id=params["sample_id"], variant=variant
        )
    )


def set_status(params: PathParams, query: None, body: samples.SetSampleStatus) -> samples.UpdateSampleRequest:
    return samples.UpdateSampleRequest(
        project_id=params["project_id"],
        sample_id=params["sample_id"],
        changes=samples.SampleChanges(status=body.status, version=body.version),
    )


# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    # -- datasets
    route("POST", DATASETS, "createDataset", subjects.CREATE_DATASET, tag="datasets", role="manager", status=201,
          body="dataset"),
    route("GET", DATASETS, "listDatasets", subjects.LIST_DATASETS, tag="datasets", role="viewer", query="page"),
    route("GET", DATASET, "getDataset", subjects.GET_DATASET, tag="datasets", role="viewer"),
    route("PATCH", DATASET, "updateDataset", subjects.UPDATE_DATASET, tag="datasets", role="manager", body="changes"),
    route("DELETE", DATASET, "deleteDataset", subjects.DELETE_DATASET, tag="datasets", role="manager"),
    # -- samples
    route("POST", DATASET + "/samples", "createSamples", subjects.CREATE_SAMPLES, tag="samples", role="manager",
          body="body"),
    route("PATCH", SAMPLES, "updateSamples", subjects.UPDATE_SAMPLES, tag="samples", role="manager", body="body"),
    route("POST", SAMPLES + "/delete", "deleteSamples", subjects.DELETE_SAMPLES, tag="samples", role="manager",
          body="body"),
    route("POST", SAMPLES + "/move", "moveSamples", subjects.MOVE_SAMPLES, tag="samples", role="manager", body="body"),
    route("GET", SAMPLE, "getSample", subjects.GET_SAMPLE, tag="samples", role="viewer"),
    route("PATCH", SAMPLE, "updateSample", subjects.UPDATE_SAMPLE, tag="samples", role="manager", body="changes"),
    # Labelers move samples along the workflow; the catalog checks each step against their role.
    route("PUT", SAMPLE + "/status", "updateSampleStatus", subjects.UPDATE_SAMPLE, tag="samples", role="labeler",
          summary="Move a sample to another status of the labelling workflow",
          to_request=ByHand(set_status, body=samples.SetSampleStatus)),
    route("DELETE", SAMPLE, "deleteSample", subjects.DELETE_SAMPLE, tag="samples", role="manager"),
    # -- media
    route("GET", SAMPLE + "/media", "redirectSampleMedia", subjects.LOCATE_MEDIA, tag="samples", role="viewer",
          summary="Redirect (302) to the sample's original image", to_request=media_ref("original")),
    route("GET", SAMPLE + "/thumbnail", "redirectSampleThumbnail", subjects.LOCATE_MEDIA, tag="samples", role="viewer",
          summary="Redirect (302) to the sample's thumbnail; 404 while it has none", to_request=media_ref("thumbnail")),
    route("GET", SAMPLE + "/urls", "getSampleUrls", subjects.SIGN_MEDIA, tag="samples", role="viewer",
          summary=subjects.SIGN_MEDIA.summary + ", usable without an API key until they expire"),
    # POST, since 500 ids do not fit a URL; it changes nothing.
    route("POST", SAMPLES + "/urls", "listSampleUrls", subjects.SIGN_MEDIA_BATCH, tag="samples", role="viewer",
          body="body", summary=subjects.SIGN_MEDIA_BATCH.summary + ", usable without an API key until they expire"),
)
# fmt: on
