-- Which images ingest made a sample of, in which dataset. The catalog learns of a new sample only once it
-- consumes MEDIA_STORED, so two batches (of one run or of two) that hold the same image at once would both
-- find it missing there; the first to insert its row here makes the sample and the other records a duplicate.
-- Rows go when the catalog says the sample was deleted or moved away, so the image may come back. Samples made
-- before this table are found in the catalog, as before.
CREATE TABLE dataset_media (
    dataset_id uuid NOT NULL,
    sha256     text NOT NULL,
    project_id uuid NOT NULL,
    sample_id  uuid NOT NULL,
    PRIMARY KEY (dataset_id, sha256)
);
CREATE INDEX dataset_media_sample ON dataset_media (sample_id);
CREATE INDEX dataset_media_project ON dataset_media (project_id);
