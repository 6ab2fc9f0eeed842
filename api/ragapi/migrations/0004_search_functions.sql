-- Row-level security only lets an index evaluate LEAKPROOF operators before the policy,
-- and neither `@@` (full text) nor `@>` (tags, metadata) is: under the API's role every
-- full-text or filtered query became a sequential scan. These SECURITY DEFINER functions
-- run those queries as the owner, so the GIN indexes serve them, and enforce the same
-- isolation themselves: the tenant comes only from the transaction's `ragline.tenant`
-- (as the policies' does), never from an argument; no tenant, no rows.

CREATE FUNCTION ragline_chunk_table(chunk_table regclass) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = public AS $$
BEGIN
  IF chunk_table::text !~ '^"?chunks_[a-z0-9_]+"?$' THEN
    RAISE EXCEPTION 'not a Ragline chunk table: %', chunk_table;
  END IF;
  RETURN chunk_table::text;
END $$;

CREATE FUNCTION ragline_text_candidates(
    chunk_table regclass, question text, k integer, tags text[], metadata jsonb)
RETURNS TABLE (id bigint, document_id uuid, source text, heading text, text text,
               token_count integer, score real)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
DECLARE
  tenant text := nullif(current_setting('ragline.tenant', true), '');
  tbl text := ragline_chunk_table(chunk_table);
BEGIN
  IF tenant IS NULL THEN RETURN; END IF;
  -- Question words OR-ed: they rarely all occur in one chunk; ts_rank_cd rewards more.
  RETURN QUERY EXECUTE format($q$
    WITH q AS (SELECT nullif(replace(plainto_tsquery('english', $1)::text, '&', '|'), '')::tsquery
                      AS tsq)
    SELECT c.id, c.document_id, c.source, c.heading, c.text, c.token_count,
           ts_rank_cd(c.tsv, q.tsq)
    FROM %s c, q
    WHERE q.tsq IS NOT NULL AND c.tsv @@ q.tsq AND c.active AND c.tenant = $2
      AND ($3::text[] IS NULL OR c.tags @> $3) AND ($4::jsonb IS NULL OR c.metadata @> $4)
    ORDER BY 7 DESC, c.id LIMIT $5 $q$, tbl)
  USING question, tenant, tags, metadata, k;
END $$;

CREATE FUNCTION ragline_count_matching(
    chunk_table regclass, tags text[], metadata jsonb, up_to integer)
RETURNS integer
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
DECLARE
  tenant text := nullif(current_setting('ragline.tenant', true), '');
  tbl text := ragline_chunk_table(chunk_table);
  found integer;
BEGIN
  IF tenant IS NULL THEN RETURN 0; END IF;
  EXECUTE format($q$
    SELECT count(*) FROM (SELECT 1 FROM %s c
      WHERE c.active AND c.tenant = $1 AND ($2::text[] IS NULL OR c.tags @> $2)
        AND ($3::jsonb IS NULL OR c.metadata @> $3) LIMIT $4) m $q$, tbl)
  INTO found USING tenant, tags, metadata, up_to;
  RETURN found;
END $$;

-- Exact nearest neighbours among the rows a filter matches (few, by the caller's count).
CREATE FUNCTION ragline_exact_candidates(
    chunk_table regclass, query_vector vector, distance_op text, k integer, tags text[],
    metadata jsonb)
RETURNS TABLE (id bigint, document_id uuid, source text, heading text, text text,
               token_count integer, score double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public
-- Plain index scans off: the HNSW index would stop after ef_search candidates.
SET enable_indexscan = off AS $$
DECLARE
  tenant text := nullif(current_setting('ragline.tenant', true), '');
  tbl text := ragline_chunk_table(chunk_table);
BEGIN
  IF tenant IS NULL THEN RETURN; END IF;
  IF distance_op NOT IN ('<=>', '<->', '<#>') THEN
    RAISE EXCEPTION 'unknown distance operator %', distance_op;
  END IF;
  RETURN QUERY EXECUTE format($q$
    SELECT c.id, c.document_id, c.source, c.heading, c.text, c.token_count,
           (c.embedding %s $1)::double precision
    FROM %s c
    WHERE c.active AND c.tenant = $2 AND ($3::text[] IS NULL OR c.tags @> $3)
      AND ($4::jsonb IS NULL OR c.metadata @> $4)
    ORDER BY c.embedding %s $1 LIMIT $5 $q$,
    distance_op, tbl, distance_op)
  USING query_vector, tenant, tags, metadata, k;
END $$;

REVOKE ALL ON FUNCTION ragline_text_candidates(regclass, text, integer, text[], jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION ragline_count_matching(regclass, text[], jsonb, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION ragline_exact_candidates(regclass, vector, text, integer, text[], jsonb)
    FROM PUBLIC;
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ragline_app') THEN
    GRANT EXECUTE ON FUNCTION ragline_text_candidates(regclass, text, integer, text[], jsonb)
        TO ragline_app;
    GRANT EXECUTE ON FUNCTION ragline_count_matching(regclass, text[], jsonb, integer)
        TO ragline_app;
    GRANT EXECUTE ON FUNCTION ragline_exact_candidates(regclass, vector, text, integer, text[], jsonb)
        TO ragline_app;
  END IF;
END $$;
