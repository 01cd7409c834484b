-- Embeddings: one vector per sample per embedding space (a model version's vectors, e.g. `detector:3`),
-- stored by inference and searched by cosine distance.
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

-- A space of a project and the one number of dimensions all its vectors have.
CREATE TABLE embedding_spaces (
    project_id uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    space      text        NOT NULL,
    dims       integer     NOT NULL CHECK (dims BETWEEN 1 AND 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, space),
    UNIQUE (project_id, space, dims)
);

-- `embedding` has no fixed dimension, since spaces differ; the key on (project, space, dims) keeps every
-- vector of a space at the space's dimension, and deleting a space deletes its vectors. HNSW indexes are
-- made per dimension when a dimension is first stored (services/catalog/embeddings.py): an expression
-- index on `embedding::vector(D)` over the rows `WHERE dims = D`.
CREATE TABLE sample_embeddings (
    sample_id  uuid        NOT NULL REFERENCES samples (id) ON DELETE CASCADE,
    space      text        NOT NULL,
    project_id uuid        NOT NULL,
    dims       integer     NOT NULL,
    embedding  vector      NOT NULL CHECK (vector_dims(embedding) = dims),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sample_id, space),
    FOREIGN KEY (project_id, space, dims) REFERENCES embedding_spaces (project_id, space, dims) ON DELETE CASCADE
);
-- A space's vectors: counted and dated by the listing (index-only), scanned exactly when few.
CREATE INDEX sample_embeddings_space ON sample_embeddings (project_id, space, dims, updated_at);
