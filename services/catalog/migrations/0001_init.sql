CREATE TABLE orgs (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Keys are long random tokens, so a plain SHA-256 is enough to make a leaked table useless;
-- a slow password hash would only slow down every request that is not served from the gateway's cache.
CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid        NOT NULL REFERENCES orgs (id),
    name       text        NOT NULL,
    key_hash   bytea       NOT NULL UNIQUE,
    is_admin   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE projects (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid        NOT NULL REFERENCES orgs (id),
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX projects_org_name ON projects (org_id, lower(name));
CREATE INDEX projects_org_page ON projects (org_id, created_at, id);
