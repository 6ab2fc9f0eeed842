-- Full-text candidates in two tiers. Ranking every chunk that matches any word of the
-- question with ts_rank_cd cost about 5 µs a chunk, so /search time grew with the corpus
-- (1.2k matches among 5k chunks: 6 ms of a 16 ms request). Chunks that contain at least two
-- of the question's words come first, ranked among themselves; chunks with only one of
-- them are ranked only when the first tier has fewer than k rows. That is coordination
-- level matching (more of the question's words first), and it ranks about a tenth of the
-- chunks. Long questions (over 12 words) keep the single tier: their pair query would grow
-- quadratically, and one of many words is rarely what matched.

CREATE OR REPLACE FUNCTION ragline_text_candidates(
    chunk_table regclass, question text, k integer, tags text[], metadata jsonb)
RETURNS TABLE (id bigint, document_id uuid, source text, heading text, text text,
               token_count integer, score real)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
DECLARE
  tenant text := nullif(current_setting('ragline.tenant', true), '');
  tbl text := ragline_chunk_table(chunk_table);
  -- plainto_tsquery's terms, each a valid tsquery on its own (a lexeme, or a phrase for
  -- a hyphenated word); its text form is split on the AND between them.
  terms text[];
  any_term tsquery;
  two_terms tsquery;
  found integer;
  statement text := $q$
    SELECT c.id, c.document_id, c.source, c.heading, c.text, c.token_count,
           ts_rank_cd(c.tsv, $1)
    FROM %s c
    WHERE c.tsv @@ $6 %s AND c.active AND c.tenant = $2
      AND ($3::text[] IS NULL OR c.tags @> $3) AND ($4::jsonb IS NULL OR c.metadata @> $4)
    ORDER BY 7 DESC, c.id LIMIT $5 $q$;
BEGIN
  IF tenant IS NULL THEN RETURN; END IF;
  SELECT array_agg(DISTINCT t) INTO terms
  FROM unnest(string_to_array(plainto_tsquery('english', question)::text, ' & ')) t
  WHERE t <> '';
  IF terms IS NULL THEN RETURN; END IF;
  any_term := array_to_string(terms, ' | ')::tsquery;
  IF cardinality(terms) BETWEEN 2 AND 12 THEN
    SELECT string_agg(format('(%s) & (%s)', a, b), ' | ')::tsquery INTO two_terms
    FROM unnest(terms) a, unnest(terms) b WHERE a < b;
    RETURN QUERY EXECUTE format(statement, tbl, '')
    USING any_term, tenant, tags, metadata, k, two_terms;
    GET DIAGNOSTICS found = ROW_COUNT;
    IF found < k THEN
      RETURN QUERY EXECUTE format(statement, tbl, 'AND NOT c.tsv @@ $7')
      USING any_term, tenant, tags, metadata, k - found, any_term, two_terms;
    END IF;
  ELSE
    RETURN QUERY EXECUTE format(statement, tbl, '')
    USING any_term, tenant, tags, metadata, k, any_term;
  END IF;
END $$;
