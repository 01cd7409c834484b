-- Metadata equality as an inverted index: a row per (project, term, sample), where a term is a key path of
-- at most two levels and one scalar value there (or one scalar element of an array there), what
-- `metadata @> {"k": v}` or `{"k": [v]}` finds. A count of "weather = rainy AND at least one car" then joins
-- two index-only scans and reads no sample row, and a page probes it by primary key (services/catalog/search.py).
-- Statement triggers on samples keep it in step in the writing transaction.

-- The term of value `value` at key path `path`: the path's keys and the value as one JSON array. Numbers are
-- compared as jsonb compares them (1 = 1.0), so they are written without trailing zeros.
CREATE FUNCTION metadata_term(path text[], value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (to_jsonb(path) || jsonb_build_array(
        CASE WHEN jsonb_typeof(value) = 'number' THEN to_jsonb(trim_scale(value::numeric)) ELSE value END))::text
$$;

-- The terms of one sample's metadata; one twice when an array holds a value twice, so writers take DISTINCT
-- rows (deduplicating here, per call, sized a hash table for each sample: 0.4 ms a sample). Written without
-- recursion so that Postgres inlines it: a recursive walk cost ten times as much per sample.
CREATE FUNCTION metadata_terms_of(doc jsonb) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT metadata_term(ARRAY[top.key], leaf)
    FROM jsonb_each(doc) top,
         LATERAL (SELECT top.value WHERE jsonb_typeof(top.value) NOT IN ('object', 'array')
                  UNION ALL
                  SELECT element FROM jsonb_array_elements(
                      CASE WHEN jsonb_typeof(top.value) = 'array' THEN top.value END) element
                  WHERE jsonb_typeof(element) NOT IN ('object', 'array')) leaves (leaf)
    UNION ALL
    SELECT metadata_term(ARRAY[top.key, inner_.key], leaf)
    FROM jsonb_each(doc) top,
         jsonb_each(CASE WHEN jsonb_typeof(top.value) = 'object' THEN top.value END) inner_,
         LATERAL (SELECT inner_.value WHERE jsonb_typeof(inner_.value) NOT IN ('object', 'array')
                  UNION ALL
                  SELECT element FROM jsonb_array_elements(
                      CASE WHEN jsonb_typeof(inner_.value) = 'array' THEN inner_.value END) element
                  WHERE jsonb_typeof(element) NOT IN ('object', 'array')) leaves (leaf)
$$;

CREATE TABLE metadata_terms (
    project_id uuid NOT NULL,
    term       text NOT NULL,
    sample_id  uuid NOT NULL,
    PRIMARY KEY (project_id, term, sample_id)
);
-- Freshly written rows make index-only scans visit the heap until a vacuum marks their pages all-visible:
-- vacuum this table after every thousand new rows rather than after a fifth of it.
ALTER TABLE metadata_terms SET (autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000);

CREATE FUNCTION samples_terms_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metadata_terms (project_id, term, sample_id)
    SELECT DISTINCT n.project_id, t.term, n.id FROM new_samples n, metadata_terms_of(n.metadata) t (term);
    RETURN NULL;
END
$$;

-- Rows are found again by their terms, so deleting needs no second index on sample_id.
CREATE FUNCTION samples_terms_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM metadata_terms m USING old_samples o, metadata_terms_of(o.metadata) t (term)
    WHERE m.project_id = o.project_id AND m.term = t.term AND m.sample_id = o.id;
    RETURN NULL;
END
$$;

-- Only rows whose project or metadata changed have terms to change; most updates set a status, an assignment
-- or tags. EXCEPT finds them by hashing: the transition tables have no statistics, and a join of the two
-- planned as a nested loop cost 0.1 ms a row.
CREATE FUNCTION samples_terms_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM metadata_terms m
    USING (SELECT id, project_id, metadata FROM old_samples EXCEPT SELECT id, project_id, metadata FROM new_samples) o,
          metadata_terms_of(o.metadata) t (term)
    WHERE m.project_id = o.project_id AND m.term = t.term AND m.sample_id = o.id;
    INSERT INTO metadata_terms (project_id, term, sample_id)
    SELECT DISTINCT n.project_id, t.term, n.id
    FROM (SELECT id, project_id, metadata FROM new_samples EXCEPT SELECT id, project_id, metadata FROM old_samples) n,
         metadata_terms_of(n.metadata) t (term);
    RETURN NULL;
END
$$;

CREATE TRIGGER samples_terms_inserted AFTER INSERT ON samples REFERENCING NEW TABLE AS new_samples
    FOR EACH STATEMENT EXECUTE FUNCTION samples_terms_inserted();
CREATE TRIGGER samples_terms_deleted AFTER DELETE ON samples REFERENCING OLD TABLE AS old_samples
    FOR EACH STATEMENT EXECUTE FUNCTION samples_terms_deleted();
CREATE TRIGGER samples_terms_updated AFTER UPDATE ON samples
    REFERENCING OLD TABLE AS old_samples NEW TABLE AS new_samples
    FOR EACH STATEMENT EXECUTE FUNCTION samples_terms_updated();

INSERT INTO metadata_terms (project_id, term, sample_id)
SELECT DISTINCT s.project_id, t.term, s.id FROM samples s, metadata_terms_of(s.metadata) t (term);
