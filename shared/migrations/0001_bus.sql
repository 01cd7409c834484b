-- The bus tables every service with a schema has: what it must publish, what it has consumed, and
-- what it gave up on.
CREATE TABLE outbox (
    seq          bigserial PRIMARY KEY,
    msg_id       text        NOT NULL UNIQUE,
    subject      text        NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

CREATE TABLE inbox (
    consumer     text        NOT NULL,
    msg_id       text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, msg_id)
);

CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    consumer    text        NOT NULL,
    subject     text        NOT NULL,
    msg_id      text        NOT NULL,
    payload     bytea       NOT NULL,
    error       text        NOT NULL,
    deliveries  integer     NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz
);
CREATE INDEX dead_letters_open ON dead_letters (id) WHERE replayed_at IS NULL;
