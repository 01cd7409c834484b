-- Runs once, when the compose Postgres volume is first initialised (docker-entrypoint-initdb.d),
-- connected to the loupe database as its owner (a superuser in this image).
-- The services need pgvector (embeddings for ranking and search) and pg_trgm (text search);
-- creating extensions takes a superuser, which the services' own role need not be.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
