-- A project's stored buckets: an S3 bucket outside Loupe and the keys that read it, sealed with LOUPE_SECRETS_KEY
-- (credentials.py) and never shown again. Imports name one by id; a run reading one keeps only `bucket_id` in its
-- `bucket`, so deleting the row stops every import that still reads it.
CREATE TABLE stored_buckets (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  uuid        NOT NULL,
    name        text        NOT NULL,
    bucket      text        NOT NULL,
    endpoint    text        NOT NULL,
    secure      boolean     NOT NULL,
    region      text        NOT NULL,
    credentials text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);
