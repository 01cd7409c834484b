-- What ingest made of each image of an import, written once its images stage is done, so that a
-- redelivered job goes on to the labels without asking ingest again.
CREATE TABLE import_images (
    import_id  uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    key        text NOT NULL,  -- the image's path below the images root, or its SHA-256 when registered by hash
    sample_id  uuid,           -- NULL: ingest could not make a sample of it
    error_code text,
    error      text,
    PRIMARY KEY (import_id, key)
);
