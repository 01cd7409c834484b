-- The sample's status (Hasty's image status), as the catalog's sample events last gave it, for releases: the
-- json_v1.1 export shows it. Null for a sample learned before this column and unchanged since; the export then
-- derives it from the label's status, as it did before.
ALTER TABLE samples ADD COLUMN status text;
