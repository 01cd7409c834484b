-- An export asked for as a zip is zipped even when its format writes one file (the Hasty dialect's, whose SDK
-- saves every export as `<name>.zip`).
ALTER TABLE exports ADD COLUMN archive boolean NOT NULL DEFAULT false;
