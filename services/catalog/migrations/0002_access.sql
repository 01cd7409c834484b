-- People, their keys, and what they may do on each project.
CREATE TABLE users (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id         uuid        NOT NULL REFERENCES orgs (id),
    name           text        NOT NULL,
    email          text        NOT NULL,
    is_admin       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    deactivated_at timestamptz
);
CREATE UNIQUE INDEX users_org_email ON users (org_id, lower(email));

-- A key acts for its user; a key without a user (the bootstrap admin key) acts for the organisation.
ALTER TABLE api_keys ADD COLUMN user_id uuid REFERENCES users (id);
CREATE INDEX api_keys_user ON api_keys (user_id);

ALTER TABLE projects
    ADD COLUMN public       boolean NOT NULL DEFAULT false,
    ADD COLUMN task_type    text    NOT NULL DEFAULT 'bboxes',
    ADD COLUMN content_type text    NOT NULL DEFAULT 'image',
    ADD COLUMN metadata     jsonb   NOT NULL DEFAULT '{}';

CREATE TABLE project_members (
    project_id uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text        NOT NULL CHECK (role IN ('viewer', 'labeler', 'reviewer', 'manager', 'admin')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (user_id);
