-- Ragline's shared tables. Per-index chunk tables are created by the index manager,
-- since each has its own vector dimension.
CREATE EXTENSION IF NOT EXISTS vector;

-- Chunk ids are global, so a version's chunk list never needs the table to resolve them.
CREATE SEQUENCE chunk_ids;

CREATE TABLE rag_indexes (
    name               text PRIMARY KEY,
    dimensions         integer NOT NULL CHECK (dimensions BETWEEN 1 AND 16000),
    distance           text NOT NULL CHECK (distance IN ('cosine', 'l2', 'innerProduct')),
    embedding_model    text NOT NULL,
    spec               jsonb NOT NULL,
    -- bumped by every document change: keys the answer cache, so old answers vanish at once
    content_version    bigint NOT NULL DEFAULT 0,
    hnsw_index         text,
    hnsw_params        jsonb,
    hnsw_built_at      timestamptz,
    hnsw_build_seconds double precision,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    id           uuid PRIMARY KEY,
    tenant       text NOT NULL,
    index_name   text NOT NULL REFERENCES rag_indexes (name) ON DELETE CASCADE,
    source       text NOT NULL,
    version      integer NOT NULL,
    content_type text NOT NULL,
    content_hash bytea NOT NULL,
    tags         text[] NOT NULL DEFAULT '{}',
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
-- One live document per source; a deleted one keeps its row (and versions) for audit.
CREATE UNIQUE INDEX documents_live_source
    ON documents (tenant, index_name, source) WHERE deleted_at IS NULL;
CREATE INDEX documents_index ON documents (tenant, index_name);

CREATE TABLE document_versions (
    document_id  uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    version      integer NOT NULL,
    content_type text NOT NULL,
    content_hash bytea NOT NULL,
    title        text,
    content      text NOT NULL,
    size_bytes   integer NOT NULL,
    tags         text[] NOT NULL DEFAULT '{}',
    metadata     jsonb NOT NULL DEFAULT '{}',
    -- the version's chunks in order; rows are shared across versions when unchanged
    chunk_ids    bigint[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, version)
);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    prefix       text NOT NULL UNIQUE,
    key_hash     bytea NOT NULL,
    name         text NOT NULL DEFAULT '',
    tenant       text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'reader')),
    indexes      text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

CREATE TABLE ingestion_jobs (
    id            uuid PRIMARY KEY,
    tenant        text NOT NULL,
    index_name    text NOT NULL,
    kind          text NOT NULL,
    payload       jsonb NOT NULL,
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL DEFAULT 5,
    run_after     timestamptz NOT NULL DEFAULT now(),
    progress      jsonb NOT NULL DEFAULT '{}',
    result        jsonb,
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingestion_jobs_ready ON ingestion_jobs (run_after) WHERE state = 'queued';
