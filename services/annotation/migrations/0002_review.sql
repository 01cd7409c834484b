-- Work-queue locks: who a queue handed a label to, until when, and the status to put back on release.
-- A lock counts only while it has not expired and its label is still in the queue's in-progress
-- status, so writing the label (LABELED, REVIEWED, ...) ends it without touching this table.
CREATE TABLE queue_locks (
    labelset_id     uuid        NOT NULL,
    sample_id       uuid        NOT NULL,
    queue           text        NOT NULL,  -- label or review
    locked_by       text        NOT NULL,
    expires_at      timestamptz NOT NULL,
    previous_status text        NOT NULL,
    PRIMARY KEY (labelset_id, sample_id),
    FOREIGN KEY (labelset_id, sample_id) REFERENCES labels (labelset_id, sample_id) ON DELETE CASCADE
);
CREATE INDEX queue_locks_holder ON queue_locks (labelset_id, queue, locked_by, expires_at);

-- Issues on samples (optionally on one object), and their comments; they go with their sample.
CREATE TABLE issues (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    seq         bigint      GENERATED ALWAYS AS IDENTITY,  -- newest first, and the listing's cursor
    project_id  uuid        NOT NULL,
    sample_id   uuid        NOT NULL REFERENCES samples (id) ON DELETE CASCADE,
    labelset    text,
    object_id   uuid,
    description text        NOT NULL,
    status      text        NOT NULL DEFAULT 'OPEN',
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX issues_project ON issues (project_id, seq DESC);
CREATE INDEX issues_sample ON issues (sample_id, seq DESC);

CREATE TABLE comments (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    seq        bigint      GENERATED ALWAYS AS IDENTITY,
    issue_id   uuid        NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    text       text        NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_issue ON comments (issue_id, seq);
