-- Tenant isolation enforced by Postgres: row-level security keyed on the per-transaction
-- setting `ragline.tenant`. A query that forgets the tenant sees nothing. FORCE applies the
-- policies to the tables' owner too; only a role with BYPASSRLS (the operator's) or a
-- superuser is exempt, and the API's role (`ragline_app`) has neither.

ALTER TABLE document_versions ADD COLUMN tenant text;
UPDATE document_versions v SET tenant = d.tenant FROM documents d WHERE d.id = v.document_id;
ALTER TABLE document_versions ALTER COLUMN tenant SET NOT NULL;

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    tenant     text NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'not_found')),
    request_id text NOT NULL DEFAULT '',
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant, at DESC);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['documents', 'document_versions', 'ingestion_jobs', 'audit_log'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON %I '
      'USING (tenant = current_setting(''ragline.tenant'', true)) '
      'WITH CHECK (tenant = current_setting(''ragline.tenant'', true))', t);
  END LOOP;
END $$;

-- The ingestion worker's two cross-tenant steps, and nothing more: claiming the next due
-- job and counting the backlog. SECURITY DEFINER runs them as the owner.
CREATE FUNCTION ragline_claim_job(lease_seconds double precision)
RETURNS SETOF ingestion_jobs
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    UPDATE ingestion_jobs SET state = 'running', attempts = attempts + 1,
           locked_until = now() + make_interval(secs => lease_seconds), updated_at = now()
    WHERE id = (
        SELECT id FROM ingestion_jobs
        WHERE (state = 'queued' AND run_after <= now())
           OR (state = 'running' AND locked_until < now())
        ORDER BY run_after, created_at
        FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING *
$$;

CREATE FUNCTION ragline_job_backlog()
RETURNS TABLE (state text, n bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    SELECT state, count(*) FROM ingestion_jobs GROUP BY state
$$;

REVOKE ALL ON FUNCTION ragline_claim_job(double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION ragline_job_backlog() FROM PUBLIC;

-- The API's role: data access only, no DDL. Created by whoever provisions the database
-- (the embedded stack does); granted here when it exists.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ragline_app') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ragline_app;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ragline_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ragline_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ragline_app;
    GRANT EXECUTE ON FUNCTION ragline_claim_job(double precision) TO ragline_app;
    GRANT EXECUTE ON FUNCTION ragline_job_backlog() TO ragline_app;
    -- migrations are the owner's business
    REVOKE ALL ON schema_migrations FROM ragline_app;
  END IF;
END $$;
