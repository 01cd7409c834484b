-- Datasets (splits) of a project and their samples.
CREATE TABLE datasets (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX datasets_project_name ON datasets (project_id, lower(name));

CREATE TABLE samples (
    id           uuid             PRIMARY KEY,
    project_id   uuid             NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    dataset_id   uuid             NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    name         text             NOT NULL,
    external_id  text,
    -- Media: `content_hash` (hex SHA-256) names the original in the media bucket and its thumbnail in
    -- the thumbs bucket; `media_url` is set instead for media that stays outside Loupe.
    content_hash text,
    media_url    text,
    format       text,
    width        integer          NOT NULL CHECK (width > 0),
    height       integer          NOT NULL CHECK (height > 0),
    size_bytes   bigint,
    metadata     jsonb            NOT NULL DEFAULT '{}',
    tags         text[]           NOT NULL DEFAULT '{}',
    priority     double precision NOT NULL DEFAULT 0,
    status       text             NOT NULL DEFAULT 'NEW',
    labeler_id   uuid,
    reviewer_id  uuid,
    version      integer          NOT NULL DEFAULT 1,
    created_at   timestamptz      NOT NULL DEFAULT now(),
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    CHECK (content_hash IS NOT NULL OR media_url IS NOT NULL)
);
-- The same image once per dataset: what makes re-adding it idempotent.
CREATE UNIQUE INDEX samples_dataset_content ON samples (dataset_id, content_hash);
CREATE INDEX samples_project_created ON samples (project_id, created_at, id);
CREATE INDEX samples_dataset_created ON samples (dataset_id, created_at, id);
CREATE INDEX samples_project_external ON samples (project_id, external_id) WHERE external_id IS NOT NULL;
