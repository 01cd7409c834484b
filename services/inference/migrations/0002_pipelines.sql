-- Live pipelines: what each is (source, model choice, sinks) and whether it should run. Every inference
-- process starts the enabled ones when it starts.
CREATE TABLE pipelines (
    id                 uuid        PRIMARY KEY,
    project_id         uuid        NOT NULL,
    org_id             uuid        NOT NULL,  -- the pipeline reads and writes inside this organisation
    name               text        NOT NULL,
    model              jsonb       NOT NULL,  -- proto.inference.ModelChoice
    source             jsonb       NOT NULL,  -- proto.pipelines.Source
    sinks              jsonb       NOT NULL,  -- [proto.pipelines.Sink]
    thresholds         jsonb       NOT NULL,  -- proto.inference.Thresholds
    queue_size         integer     NOT NULL,
    enabled            boolean     NOT NULL DEFAULT false,
    capture_dataset_id uuid,  -- the next frame goes into this dataset
    created_by         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipelines_project ON pipelines (project_id, created_at, id);
