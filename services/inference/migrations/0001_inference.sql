-- Inference jobs (auto-label, embeddings, ranking): one JetStream job message each, resumable from the
-- last slice they recorded.
CREATE TABLE jobs (
    id               uuid             PRIMARY KEY,
    project_id       uuid             NOT NULL,
    org_id           uuid             NOT NULL,  -- the job reads and writes inside this organisation
    kind             text             NOT NULL,
    state            text             NOT NULL DEFAULT 'QUEUED',
    spec             jsonb            NOT NULL,  -- proto.inference.JobSpec
    model            text             NOT NULL,  -- the version resolved when the job was created
    version          integer          NOT NULL,
    family           text             NOT NULL,
    triton_model     text             NOT NULL,
    image_size       integer          NOT NULL,
    task             jsonb            NOT NULL,  -- what decoding needs: classes, tag groups
    phase            text             NOT NULL DEFAULT 'pool',  -- ranking by core-set first embeds the labelled samples
    cursor           text,  -- the catalog's page cursor after the last recorded slice
    total            integer,
    done             integer          NOT NULL DEFAULT 0,
    written          integer          NOT NULL DEFAULT 0,
    skipped          integer          NOT NULL DEFAULT 0,
    failed           integer          NOT NULL DEFAULT 0,
    seconds          double precision NOT NULL DEFAULT 0,  -- time spent going through samples, over resumes
    resumed          integer          NOT NULL DEFAULT 0,
    cancel_requested boolean          NOT NULL DEFAULT false,
    error            text,
    view_id          uuid,
    created_by       text,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);
CREATE INDEX jobs_project ON jobs (project_id, created_at DESC, id);

-- What a job found per sample: autolabel's predictions, a ranking's scores (and, for core-set, the
-- embeddings it chooses among), in the order the samples were gone through. `seq` is the sample's place
-- in the pass, so a slice recorded again after a crash adds nothing.
CREATE TABLE job_results (
    job_id      uuid             NOT NULL REFERENCES jobs ON DELETE CASCADE,
    phase       text             NOT NULL,
    seq         integer          NOT NULL,
    sample_id   uuid             NOT NULL,
    score       double precision,
    rank        integer,
    embedding   bytea,  -- float32, little-endian
    predictions jsonb,  -- proto.inference.Predictions
    PRIMARY KEY (job_id, phase, seq)
);
CREATE INDEX job_results_rank ON job_results (job_id, rank) WHERE rank IS NOT NULL;
