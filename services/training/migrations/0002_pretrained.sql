-- The model version whose weights a run started from (proto.training.PretrainedVersion: model and
-- version as named when the run was created), on the run and on the version it made (lineage).
ALTER TABLE runs ADD COLUMN pretrained jsonb;
ALTER TABLE model_versions ADD COLUMN pretrained jsonb;
