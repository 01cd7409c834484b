-- The media bucket keeps each image once, whoever stored it; which organisations have themselves stored it is
-- recorded here, and registering media by SHA-256 reaches only those images, so no organisation can use or
-- detect another's.
CREATE TABLE org_media (
    org_id uuid NOT NULL,
    sha256 text NOT NULL,
    PRIMARY KEY (org_id, sha256)
);

-- The organisation a run works for (the caller's, or for a bus feed the project's): the images it reads become
-- that organisation's. Null only on runs made before this column; those record no org_media, and a bus feed
-- fills it in on its next message.
ALTER TABLE runs ADD COLUMN org_id uuid;
