-- The keys of a pipeline's `s3` source, sealed with LOUPE_SECRETS_KEY (shared/credentials.py): the source
-- column keeps the access key only, so no answer ever carries the secret.
ALTER TABLE pipelines ADD COLUMN credentials text;
