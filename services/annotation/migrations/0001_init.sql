-- What annotation keeps of the catalog's samples (fed by its sample events, or asked for on the
-- bus the first time a sample is labelled before its event arrived): enough to validate labels
-- against the image size, to hand out work, and to build releases without the catalog.
CREATE TABLE samples (
    id           uuid             PRIMARY KEY,
    project_id   uuid             NOT NULL,
    dataset_id   uuid             NOT NULL,
    name         text             NOT NULL,
    content_hash text,
    media_url    text,
    width        integer          NOT NULL,
    height       integer          NOT NULL,
    external_id  text,
    metadata     jsonb            NOT NULL DEFAULT '{}',
    priority     double precision NOT NULL DEFAULT 0,
    labeler_id   uuid,
    reviewer_id  uuid,
    created_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX samples_project ON samples (project_id, dataset_id, id);
CREATE INDEX samples_queue ON samples (project_id, priority DESC, created_at, id);

CREATE TABLE labelsets (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid        NOT NULL,
    name            text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    is_ground_truth boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

-- A sample's label in a labelset. `version` is the revision LabelChanged carries.
CREATE TABLE labels (
    labelset_id   uuid             NOT NULL REFERENCES labelsets (id) ON DELETE CASCADE,
    sample_id     uuid             NOT NULL,
    project_id    uuid             NOT NULL,
    status        text             NOT NULL,
    score         double precision,
    tag_class_ids uuid[]           NOT NULL DEFAULT '{}',
    attributes    jsonb            NOT NULL DEFAULT '{}',
    version       integer          NOT NULL DEFAULT 1,
    created_by    text,
    created_at    timestamptz      NOT NULL DEFAULT now(),
    updated_by    text,
    updated_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (labelset_id, sample_id)
);
CREATE INDEX labels_status ON labels (labelset_id, status);

-- Objects; `body` is the object as the API returns it (LabelObject), so reads and releases need no
-- reassembly.
CREATE TABLE objects (
    id          uuid    PRIMARY KEY,
    seq         bigint  GENERATED ALWAYS AS IDENTITY,  -- the order objects were first written in
    labelset_id uuid    NOT NULL,
    sample_id   uuid    NOT NULL,
    class_id    uuid    NOT NULL,
    version     integer NOT NULL,
    body        json    NOT NULL,  -- json, not jsonb: only ever returned whole, never searched inside
    FOREIGN KEY (labelset_id, sample_id) REFERENCES labels (labelset_id, sample_id) ON DELETE CASCADE
);
CREATE INDEX objects_label ON objects (labelset_id, sample_id, seq);

-- Who changed what: one row per sample and call for its objects written, its objects deleted, and
-- its label's own fields changed.
-- No primary key: rows are only ever found through the two indexes below; the identity keeps ids
-- unique.
CREATE TABLE audit (
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    project_id  uuid        NOT NULL,
    sample_id   uuid        NOT NULL,
    labelset    text        NOT NULL,
    action      text        NOT NULL,
    actor       text,
    at          timestamptz NOT NULL DEFAULT now(),
    change      text        NOT NULL DEFAULT '{}'  -- JSON, only ever read back whole
);
CREATE INDEX audit_sample ON audit (project_id, sample_id, id DESC);
CREATE INDEX audit_project ON audit (project_id, id DESC);
