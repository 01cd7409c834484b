-- A batch of items is claimed, worked on with no transaction open (reading, decoding, S3, the catalog), and its
-- outcome recorded after, for the items the claim still holds. The claim is `claimed_by` (a token per claim)
-- until `claimed_until`: renewed while its process works, so an expired claim is a dead process's, and its
-- PENDING items may be claimed again. Both are null on items never claimed.
ALTER TABLE items ADD COLUMN claimed_by uuid, ADD COLUMN claimed_until timestamptz;
