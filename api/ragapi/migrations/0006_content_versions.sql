-- Content versions from one sequence. The answer cache's key holds the index's name and
-- its content version; a per-index counter restarted at 0 when an index was dropped and
-- created again under the same name, so the new index's versions met the old one's keys,
-- and answers about deleted documents could come back from Redis (within the cache's
-- TTL). Drawn from one sequence, a version is never used twice, by any index, ever.
CREATE SEQUENCE IF NOT EXISTS ragline_content_versions;
SELECT setval('ragline_content_versions',
              greatest((SELECT max(content_version) FROM rag_indexes), 0) + 1, false);
ALTER TABLE rag_indexes
    ALTER COLUMN content_version SET DEFAULT nextval('ragline_content_versions');

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ragline_app') THEN
    GRANT USAGE, SELECT ON SEQUENCE ragline_content_versions TO ragline_app;
  END IF;
END
$$;
