-- Asynchronous ingestion: the upload itself, a lease for crash recovery, and the trace
-- context of the request that queued the job (the job's span links back to it).
ALTER TABLE ingestion_jobs
    ADD COLUMN data          bytea,
    ADD COLUMN locked_until  timestamptz,
    ADD COLUMN trace_context jsonb NOT NULL DEFAULT '{}';
-- A claim looks for queued jobs that are due, and for running ones whose lease ran out.
CREATE INDEX ingestion_jobs_claim ON ingestion_jobs (state, run_after);
