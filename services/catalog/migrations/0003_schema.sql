-- The label schema of each project (services/catalog/schema.py). Rows are archived, never deleted:
-- labels in the annotation service refer to them by id. Every edit locks the project's label_schemas
-- row first, so edits of one project are serial and `version` counts them.
--
-- Names (and external ids) are unique among a project's active items. The constraints are deferred
-- because one PUT may swap two names; the service checks the same rules first, with a clear error.
-- Attribute names are unique per class they apply to, which no constraint can say: the service alone
-- checks that.
CREATE TABLE label_schemas (
    project_id uuid    PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    version    integer NOT NULL DEFAULT 0
);

CREATE TABLE keypoint_schemas (
    id          uuid    PRIMARY KEY,
    project_id  uuid    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text    NOT NULL,
    description text    NOT NULL,
    keypoints   text[]  NOT NULL,  -- labels store points by index into it: it only ever grows
    skeleton    jsonb   NOT NULL,  -- [[a, b], ...] indexes into keypoints
    colors      text[],            -- one per keypoint
    "order"     integer NOT NULL,
    extra       jsonb   NOT NULL,
    archived    boolean NOT NULL,
    version     integer NOT NULL,
    CONSTRAINT keypoint_schemas_active_name EXCLUDE USING btree (project_id WITH =, lower(name) WITH =)
        WHERE (NOT archived) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX keypoint_schemas_project ON keypoint_schemas (project_id);

CREATE TABLE label_classes (
    id                 uuid    PRIMARY KEY,
    project_id         uuid    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name               text    NOT NULL,
    kind               text    NOT NULL CHECK (kind IN ('object', 'background')),
    color              text    NOT NULL,
    "order"            integer NOT NULL,
    description        text    NOT NULL,
    external_id        text,
    keypoint_schema_id uuid    REFERENCES keypoint_schemas (id),
    extra              jsonb   NOT NULL,
    archived           boolean NOT NULL,
    version            integer NOT NULL,
    CONSTRAINT label_classes_active_name EXCLUDE USING btree (project_id WITH =, lower(name) WITH =)
        WHERE (NOT archived) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT label_classes_active_external_id EXCLUDE USING btree (project_id WITH =, external_id WITH =)
        WHERE (NOT archived AND external_id IS NOT NULL) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX label_classes_project ON label_classes (project_id);

CREATE TABLE attributes (
    id          uuid    PRIMARY KEY,
    project_id  uuid    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text    NOT NULL,
    type        text    NOT NULL,
    subject     text    NOT NULL,
    "values"    jsonb   NOT NULL,  -- [{id, value, archived}]: removed values stay, archived
    min         jsonb,             -- numbers kept as given: an INT attribute's bounds stay integers
    max         jsonb,
    required    boolean NOT NULL,
    "default"   jsonb,
    description text    NOT NULL,
    "order"     integer NOT NULL,
    class_ids   uuid[]  NOT NULL,  -- label_classes of the project; empty: all of them
    extra       jsonb   NOT NULL,
    archived    boolean NOT NULL,
    version     integer NOT NULL
);
CREATE INDEX attributes_project ON attributes (project_id);

CREATE TABLE tag_groups (
    id          uuid    PRIMARY KEY,
    project_id  uuid    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text    NOT NULL,
    selection   text    NOT NULL CHECK (selection IN ('SINGLE', 'MULTIPLE')),
    required    boolean NOT NULL,
    "order"     integer NOT NULL,
    description text    NOT NULL,
    extra       jsonb   NOT NULL,
    archived    boolean NOT NULL,
    version     integer NOT NULL,
    CONSTRAINT tag_groups_active_name EXCLUDE USING btree (project_id WITH =, lower(name) WITH =)
        WHERE (NOT archived) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX tag_groups_project ON tag_groups (project_id);

CREATE TABLE tag_classes (
    id          uuid    PRIMARY KEY,
    project_id  uuid    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    group_id    uuid    NOT NULL REFERENCES tag_groups (id),
    name        text    NOT NULL,
    color       text    NOT NULL,
    "order"     integer NOT NULL,
    description text    NOT NULL,
    external_id text,
    extra       jsonb   NOT NULL,
    archived    boolean NOT NULL,
    version     integer NOT NULL,
    CONSTRAINT tag_classes_active_name EXCLUDE USING btree (group_id WITH =, lower(name) WITH =)
        WHERE (NOT archived) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT tag_classes_active_external_id EXCLUDE USING btree (project_id WITH =, external_id WITH =)
        WHERE (NOT archived AND external_id IS NOT NULL) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX tag_classes_project ON tag_classes (project_id);
