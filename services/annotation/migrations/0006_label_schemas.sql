-- What annotation keeps of each project's label schema (the catalog's whole document, archived items
-- included): asked for on a project's first label write, refreshed on the catalog's schema events,
-- used by a write only when it is at the version the catalog's key-value bucket names
-- (services/annotation/schema_facts.py).
CREATE TABLE label_schemas (
    project_id uuid    PRIMARY KEY,
    org_id     uuid    NOT NULL,  -- the project's organisation: a caller of another one never sees it
    version    integer NOT NULL,
    document   json    NOT NULL   -- proto.schema.LabelSchema as the catalog answered it
);
