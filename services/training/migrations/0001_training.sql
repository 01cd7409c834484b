-- Training configurations per project, runs (one job each), and the model registry.
CREATE TABLE training_configs (
    project_id uuid        PRIMARY KEY,
    config     jsonb       NOT NULL,  -- proto.training.TrainingConfig
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE runs (
    id               uuid        PRIMARY KEY,
    project_id       uuid        NOT NULL,
    org_id           uuid        NOT NULL,  -- the job reads the release and images inside this organisation
    model            text        NOT NULL,
    family           text        NOT NULL,
    state            text        NOT NULL DEFAULT 'QUEUED',
    release_id       uuid        NOT NULL,
    labelset         text        NOT NULL,
    tag_group        text,
    config           jsonb       NOT NULL,  -- the project's configuration with the run's changes, as it ran
    epoch            integer     NOT NULL DEFAULT 0,
    loss             double precision,
    metrics          jsonb       NOT NULL DEFAULT '{}',
    eta_s            double precision,
    resumed          integer     NOT NULL DEFAULT 0,
    cancel_requested boolean     NOT NULL DEFAULT false,
    job_submitted    boolean     NOT NULL DEFAULT false,  -- once its release is built
    error            text,
    version          integer,  -- the version number it publishes, chosen once so a redelivery reuses it
    version_id       uuid,
    created_by       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);
CREATE INDEX runs_project ON runs (project_id, created_at DESC, id);
CREATE INDEX runs_waiting ON runs (release_id) WHERE NOT job_submitted;

CREATE TABLE models (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   uuid        NOT NULL,
    name         text        NOT NULL,
    family       text        NOT NULL,
    triton_model text        NOT NULL UNIQUE,
    next_version integer     NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE model_versions (
    id                 uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id           uuid             NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    version            integer          NOT NULL,
    run_id             uuid             NOT NULL UNIQUE,  -- a run registers one version, even when redelivered
    release_id         uuid             NOT NULL,
    labelset           text             NOT NULL,
    classes            text[]           NOT NULL,
    metrics            jsonb            NOT NULL,
    per_class          jsonb            NOT NULL,
    validation_samples integer          NOT NULL,
    training_samples   integer          NOT NULL,
    config             jsonb            NOT NULL,
    code_version       text             NOT NULL,
    onnx_max_abs_diff  double precision NOT NULL,
    weights_deleted    boolean          NOT NULL DEFAULT false,
    created_at         timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (model_id, version)
);

-- The version that serves each task family of a project (inference uses it).
CREATE TABLE active_versions (
    project_id uuid NOT NULL,
    family     text NOT NULL,
    version_id uuid NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, family)
);
