-- A tagger version's heads in output order (proto.training.TagGroupValues: its tag group and values), so
-- inference can name what each `tag<i>_logits` chose; [] for the other families and for versions made before.
ALTER TABLE model_versions ADD COLUMN tag_groups jsonb NOT NULL DEFAULT '[]';
