"""REST operations for datasets, samples and their media."""

from __future__ import annotations

from proto import common, samples, subjects
from services.gateway.operations import Operation, fixed

DATASETS = "/v1/projects/{project_id}/datasets"
DATASET = DATASETS + "/{dataset_id}"
SAMPLES = "/v1/projects/{project_id}/samples"
SAMPLE = SAMPLES + "/{sample_id}"


def sample_ref(params, query, body) -> samples.SampleRef:
    return samples.SampleRef(project_id=params["project_id"], sample_id=params["sample_id"])


def dataset_ref(params, query, body) -> samples.DatasetRef:
    return samples.DatasetRef(project_id=params["project_id"], dataset_id=params["dataset_id"])


def media_ref(variant: samples.MediaVariant):
    return lambda params, query, body: samples.SampleMediaRef(project_id=params["project_id"],
                                                               sample_id=params["sample_id"], variant=variant)


OPERATIONS: tuple[Operation, ...] = (
    # -- datasets
    Operation(method="POST", path=DATASETS, operation_id="createDataset", tag="datasets", role="manager",
              summary=subjects.CREATE_DATASET.summary, command=fixed(subjects.CREATE_DATASET),
              reply=samples.Dataset, body=samples.CreateDataset, status=201,
              to_request=lambda params, query, body: samples.CreateDatasetRequest(project_id=params["project_id"],
                                                                                  dataset=body)),
    Operation(method="GET", path=DATASETS, operation_id="listDatasets", tag="datasets", role="viewer",
              summary=subjects.LIST_DATASETS.summary, command=fixed(subjects.LIST_DATASETS),
              reply=samples.DatasetPage, query=samples.ListDatasets,
              to_request=lambda params, query, body: samples.ListDatasetsRequest(project_id=params["project_id"],
                                                                                 page=query)),
    Operation(method="GET", path=DATASET, operation_id="getDataset", tag="datasets", role="viewer",
              summary=subjects.GET_DATASET.summary, command=fixed(subjects.GET_DATASET), reply=samples.Dataset,
              to_request=dataset_ref),
    Operation(method="PATCH", path=DATASET, operation_id="updateDataset", tag="datasets", role="manager",
              summary=subjects.UPDATE_DATASET.summary, command=fixed(subjects.UPDATE_DATASET),
              reply=samples.Dataset, body=samples.UpdateDataset,
              to_request=lambda params, query, body: samples.UpdateDatasetRequest(
                  project_id=params["project_id"], dataset_id=params["dataset_id"], changes=body)),
    Operation(method="DELETE", path=DATASET, operation_id="deleteDataset", tag="datasets", role="manager",
              summary=subjects.DELETE_DATASET.summary, command=fixed(subjects.DELETE_DATASET), reply=common.Empty,
              status=204, to_request=dataset_ref),
    # -- samples
    Operation(method="POST", path=DATASET + "/samples", operation_id="createSamples", tag="samples", role="manager",
              summary=subjects.CREATE_SAMPLES.summary, command=fixed(subjects.CREATE_SAMPLES),
              reply=samples.CreatedSamples, body=samples.CreateSamples,
              to_request=lambda params, query, body: samples.CreateSamplesRequest(
                  project_id=params["project_id"], dataset_id=params["dataset_id"], body=body)),
    Operation(method="PATCH", path=SAMPLES, operation_id="updateSamples", tag="samples", role="manager",
              summary=subjects.UPDATE_SAMPLES.summary, command=fixed(subjects.UPDATE_SAMPLES),
              reply=samples.UpdatedSamples, body=samples.UpdateSamples,
              to_request=lambda params, query, body: samples.UpdateSamplesRequest(project_id=params["project_id"],
                                                                                  body=body)),
    Operation(method="POST", path=SAMPLES + "/delete", operation_id="deleteSamples", tag="samples", role="manager",
              summary=subjects.DELETE_SAMPLES.summary, command=fixed(subjects.DELETE_SAMPLES),
              reply=samples.DeletedSamples, body=samples.DeleteSamples,
              to_request=lambda params, query, body: samples.DeleteSamplesRequest(project_id=params["project_id"],
                                                                                  body=body)),
    Operation(method="POST", path=SAMPLES + "/move", operation_id="moveSamples", tag="samples", role="manager",
              summary=subjects.MOVE_SAMPLES.summary, command=fixed(subjects.MOVE_SAMPLES),
              reply=samples.MovedSamples, body=samples.MoveSamples,
              to_request=lambda params, query, body: samples.MoveSamplesRequest(project_id=params["project_id"],
                                                                                body=body)),
    Operation(method="GET", path=SAMPLE, operation_id="getSample", tag="samples", role="viewer",
              summary=subjects.GET_SAMPLE.summary, command=fixed(subjects.GET_SAMPLE), reply=samples.Sample,
              to_request=sample_ref),
    Operation(method="PATCH", path=SAMPLE, operation_id="updateSample", tag="samples", role="manager",
              summary=subjects.UPDATE_SAMPLE.summary, command=fixed(subjects.UPDATE_SAMPLE), reply=samples.Sample,
              body=samples.SampleChanges,
              to_request=lambda params, query, body: samples.UpdateSampleRequest(
                  project_id=params["project_id"], sample_id=params["sample_id"], changes=body)),
    # Labelers move samples along the workflow; the catalog checks each step against their role.
    Operation(method="PUT", path=SAMPLE + "/status", operation_id="updateSampleStatus", tag="samples",
              role="labeler", summary="Move a sample to another status of the labelling workflow",
              command=fixed(subjects.UPDATE_SAMPLE), reply=samples.Sample, body=samples.SetSampleStatus,
              to_request=lambda params, query, body: samples.UpdateSampleRequest(
                  project_id=params["project_id"], sample_id=params["sample_id"],
                  changes=samples.SampleChanges(status=body.status, version=body.version))),
    Operation(method="DELETE", path=SAMPLE, operation_id="deleteSample", tag="samples", role="manager",
              summary=subjects.DELETE_SAMPLE.summary, command=fixed(subjects.DELETE_SAMPLE), reply=common.Empty,
              status=204, to_request=sample_ref),
    # -- media
    Operation(method="GET", path=SAMPLE + "/media", operation_id="redirectSampleMedia", tag="samples",
              role="viewer", summary="Redirect (302) to the sample's original image",
              command=fixed(subjects.LOCATE_MEDIA), reply=common.Redirect, status=302,
              to_request=media_ref("original")),
    Operation(method="GET", path=SAMPLE + "/thumbnail", operation_id="redirectSampleThumbnail", tag="samples",
              role="viewer", summary="Redirect (302) to the sample's thumbnail; 404 while it has none",
              command=fixed(subjects.LOCATE_MEDIA), reply=common.Redirect, status=302,
              to_request=media_ref("thumbnail")),
    Operation(method="GET", path=SAMPLE + "/urls", operation_id="getSampleUrls", tag="samples", role="viewer",
              summary=subjects.SIGN_MEDIA.summary + ", usable without an API key until they expire",
              command=fixed(subjects.SIGN_MEDIA), reply=samples.SampleUrls, to_request=sample_ref),
)
