-- Sample search: indexes on samples, the label summary read model, saved views.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- Keyset orderings of a project's samples (read backwards for descending sorts); created_at has
-- samples_project_created already.
CREATE INDEX samples_project_priority ON samples (project_id, priority, id);
CREATE INDEX samples_project_updated ON samples (project_id, updated_at, id);
CREATE INDEX samples_project_name ON samples (project_id, name, id);
-- A status is usually wanted in priority order (the labelling queue).
CREATE INDEX samples_project_status_priority ON samples (project_id, status, priority, id);
-- A labeller's or reviewer's queue.
CREATE INDEX samples_labeler_priority ON samples (labeler_id, priority, id) WHERE labeler_id IS NOT NULL;
CREATE INDEX samples_reviewer_priority ON samples (reviewer_id, priority, id) WHERE reviewer_id IS NOT NULL;
-- name ILIKE '%x%' (3 characters or more), metadata @> '{"k": v}', tags && / @> array.
CREATE INDEX samples_name_trgm ON samples USING gin (name gin_trgm_ops);
CREATE INDEX samples_metadata ON samples USING gin (metadata jsonb_path_ops);
CREATE INDEX samples_tags ON samples USING gin (tags);
-- Finer statistics, so the planner tells a rare name pattern or metadata value from a common one:
-- walking the sort order to the first 50 matches is right for common ones, collecting the matches
-- and sorting them for rare ones, and the estimate picks between the two.
ALTER TABLE samples ALTER COLUMN name SET STATISTICS 1000, ALTER COLUMN metadata SET STATISTICS 1000;

-- The label summary, a read model of annotation's LabelChanged events: per (sample, labelset) the
-- newest revision's status and tag classes, and a row per class with its object count, so "at least N
-- objects of class X" is an index range and "no X" an anti-join probe. Rows go with their sample.
CREATE TABLE label_summaries (
    sample_id     uuid        NOT NULL REFERENCES samples (id) ON DELETE CASCADE,
    labelset      text        NOT NULL,
    project_id    uuid        NOT NULL,
    revision      bigint      NOT NULL,
    status        text        NOT NULL,
    tag_class_ids text[]      NOT NULL DEFAULT '{}',
    changed_at    timestamptz,
    PRIMARY KEY (sample_id, labelset)
);
CREATE INDEX label_summaries_status ON label_summaries (project_id, labelset, status);
CREATE INDEX label_summaries_tags ON label_summaries USING gin (tag_class_ids);

CREATE TABLE label_class_counts (
    sample_id uuid    NOT NULL,
    labelset  text    NOT NULL,
    class_id  text    NOT NULL,
    count     integer NOT NULL CHECK (count > 0),
    -- With the count in the key's index, probing a sample for a class is index-only.
    PRIMARY KEY (sample_id, labelset, class_id) INCLUDE (count),
    FOREIGN KEY (sample_id, labelset) REFERENCES label_summaries ON DELETE CASCADE
);
CREATE INDEX label_class_counts_by_class ON label_class_counts (class_id, labelset, count, sample_id);
-- Frequent classes also have more objects per sample; without these joint statistics the planner
-- takes class and count as independent and misjudges "at least N of class X" by several times.
CREATE STATISTICS label_class_counts_class_count (mcv) ON class_id, labelset, count FROM label_class_counts;

-- Saved views: a filter document (filter set) or an explicit set of samples (filter NULL).
CREATE TABLE saved_views (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    filter      jsonb,
    sort        text        NOT NULL,
    created_by  text        NOT NULL,
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX saved_views_project_name ON saved_views (project_id, lower(name));
CREATE INDEX saved_views_project_page ON saved_views (project_id, created_at, id);

CREATE TABLE saved_view_items (
    view_id   uuid        NOT NULL REFERENCES saved_views (id) ON DELETE CASCADE,
    sample_id uuid        NOT NULL REFERENCES samples (id) ON DELETE CASCADE,
    added_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (view_id, sample_id)
);
CREATE INDEX saved_view_items_sample ON saved_view_items (sample_id);
