-- Each run's log: what its job and trainer did, line by line (proto.training.RunLogLine). `seq` counts a
-- run's lines from 1; the run's row holds the count, so writing a line takes the row's lock and lines commit
-- in `seq` order: a reader that follows the log with a cursor never skips one. Deleted with the run.
ALTER TABLE runs ADD COLUMN log_lines bigint NOT NULL DEFAULT 0;

CREATE TABLE run_logs (
    run_id  uuid        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq     bigint      NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    level   text        NOT NULL,  -- info, warning or error
    message text        NOT NULL,
    PRIMARY KEY (run_id, seq)
);
