-- Saved sources and sinks: pipeline configs kept by name in an organisation (Geti Tune's top-level sources
-- and sinks). A pipeline carries its own copy of each config; `pipeline_saved` records which saved one it
-- copied, so that changing the saved one reaches the pipelines still carrying its config.
CREATE TABLE saved_io (
    id         uuid        PRIMARY KEY,
    org_id     uuid        NOT NULL,
    part       text        NOT NULL CHECK (part IN ('source', 'sink')),
    name       text        NOT NULL,
    config     jsonb       NOT NULL,  -- proto.pipelines.Source or Sink
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX saved_io_org ON saved_io (org_id, part, created_at, id);

CREATE TABLE pipeline_saved (
    pipeline_id uuid    NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    position    integer NOT NULL,  -- -1: the source; 0, 1, …: the sink at that place
    saved_id    uuid    NOT NULL REFERENCES saved_io (id),
    PRIMARY KEY (pipeline_id, position)
);
CREATE INDEX pipeline_saved_saved ON pipeline_saved (saved_id);
