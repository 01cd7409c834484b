-- Releases: a snapshot of a project's samples, labels and schema, written once to the releases
-- bucket as a native release file (`key`), then never changed.
CREATE TABLE releases (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  uuid        NOT NULL,
    org_id      uuid        NOT NULL,  -- the jobs ask the catalog for the schema inside this organisation
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    labelsets   text[]      NOT NULL,
    state       text        NOT NULL DEFAULT 'PENDING',
    samples     integer     NOT NULL DEFAULT 0,
    objects     integer     NOT NULL DEFAULT 0,
    key         text,
    error       text,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (project_id, name)
);
CREATE INDEX releases_project ON releases (project_id, created_at DESC, id);

CREATE TABLE exports (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    release_id  uuid        NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    project_id  uuid        NOT NULL,
    format      text        NOT NULL,
    labelset    text        NOT NULL,
    filter      text        NOT NULL,  -- ExportFilter as JSON
    task        text        NOT NULL,
    state       text        NOT NULL DEFAULT 'PENDING',
    samples     integer     NOT NULL DEFAULT 0,
    objects     integer     NOT NULL DEFAULT 0,
    size_bytes  bigint,
    key         text,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX exports_release ON exports (release_id, created_at);

-- Imports of labelled data: the uploaded file, then images through ingest, then labels.
CREATE TABLE imports (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid        NOT NULL,
    org_id          uuid        NOT NULL,
    dataset_id      uuid        NOT NULL,
    labelset        text        NOT NULL,
    format          text        NOT NULL,
    images_source   text,       -- ImageSource as JSON, or NULL: images in the uploaded zip
    create_classes  boolean     NOT NULL,
    state           text        NOT NULL DEFAULT 'WAITING',
    stage           text        NOT NULL DEFAULT 'upload',  -- upload → images → labels → done
    ingest_run_id   uuid,
    images          integer     NOT NULL DEFAULT 0,
    imported        integer     NOT NULL DEFAULT 0,
    failed          integer     NOT NULL DEFAULT 0,
    objects         integer     NOT NULL DEFAULT 0,
    classes_created text[]      NOT NULL DEFAULT '{}',
    error           text,
    created_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

CREATE TABLE import_items (
    import_id  uuid    NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    idx        integer NOT NULL,
    name       text    NOT NULL,
    outcome    text    NOT NULL,
    sample_id  uuid,
    objects    integer NOT NULL DEFAULT 0,
    error_code text,
    error      text,
    PRIMARY KEY (import_id, idx)
);
