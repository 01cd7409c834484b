-- Label QA runs: a predictions labelset compared with ground truth, one slice of samples at a time.
-- A run goes with either of its labelsets (its findings point at their objects), and so with its project.
CREATE TABLE qa_runs (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id     uuid        NOT NULL,
    org_id         text        NOT NULL,  -- the job asks the catalog for the schema inside this organisation
    ground_truth   uuid        NOT NULL REFERENCES labelsets (id) ON DELETE CASCADE,
    predictions    uuid        NOT NULL REFERENCES labelsets (id) ON DELETE CASCADE,
    dataset_id     uuid,
    options        jsonb       NOT NULL,
    state          text        NOT NULL DEFAULT 'PENDING',
    cursor         uuid,  -- the last sample compared: a redelivered job goes on after it
    samples        integer     NOT NULL DEFAULT 0,
    findings       integer     NOT NULL DEFAULT 0,
    counts         jsonb       NOT NULL DEFAULT '{}',
    error          text,
    created_by     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX qa_runs_project ON qa_runs (project_id, created_at DESC);

CREATE TABLE qa_findings (
    id                     uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    seq                    bigint           GENERATED ALWAYS AS IDENTITY,  -- the order compare() found them in
    run_id                 uuid             NOT NULL REFERENCES qa_runs (id) ON DELETE CASCADE,
    sample_id              uuid             NOT NULL,
    kind                   text             NOT NULL,
    ground_truth_object_id uuid,
    prediction_object_id   uuid,
    class_id               uuid,
    predicted_class_id     uuid,
    tag_class_id           uuid,
    attribute_id           uuid,
    iou                    double precision,
    confidence             double precision,
    resolution             text,
    resolved_by            text,
    resolved_at            timestamptz
);
CREATE INDEX qa_findings_run ON qa_findings (run_id, sample_id, seq);
CREATE INDEX qa_findings_kind ON qa_findings (run_id, kind, sample_id, seq);
