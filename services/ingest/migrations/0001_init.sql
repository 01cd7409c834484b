-- Images ingest has validated and stored, by content: each is in the media bucket once.
CREATE TABLE media (
    sha256     text        PRIMARY KEY,
    format     text        NOT NULL,
    width      integer     NOT NULL,
    height     integer     NOT NULL,
    size_bytes bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One run per way in: an upload session, a URL list, a bucket import, a dataset's bus feed.
CREATE TABLE runs (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   uuid        NOT NULL,
    dataset_id   uuid        NOT NULL,
    kind         text        NOT NULL,
    state        text        NOT NULL,
    source       text        NOT NULL DEFAULT '',
    -- Bucket imports: where to list, with the keys encrypted, and how far the listing got.
    bucket       jsonb,
    list_after   text,
    listed       boolean     NOT NULL DEFAULT true,
    steps        integer     NOT NULL DEFAULT 0,  -- jobs submitted, numbering the next one
    total        integer     NOT NULL DEFAULT 0,
    created      integer     NOT NULL DEFAULT 0,
    duplicates   integer     NOT NULL DEFAULT 0,
    failed       integer     NOT NULL DEFAULT 0,
    created_by   text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX runs_project ON runs (project_id, created_at DESC);
-- A dataset's bus feed is one long-lived run.
CREATE UNIQUE INDEX runs_bus_feed ON runs (dataset_id) WHERE kind = 'bus';

CREATE TABLE items (
    run_id      uuid             NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx         integer          NOT NULL,
    source      text             NOT NULL,  -- staging key, URL, S3 key or bus message id
    name        text,
    external_id text,
    metadata    jsonb            NOT NULL DEFAULT '{}',
    priority    double precision NOT NULL DEFAULT 0,
    state       text             NOT NULL,
    sha256      text,
    sample_id   uuid,
    error_code  text,
    error       text,
    PRIMARY KEY (run_id, idx)
);
CREATE UNIQUE INDEX items_run_source ON items (run_id, source);
CREATE INDEX items_pending ON items (run_id, idx) WHERE state = 'PENDING';
