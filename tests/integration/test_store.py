"""The store against real Postgres+pgvector: migrations under a race, the filtered-search
strategies, and the HNSW rebuild that swaps indexes while queries run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import numpy as np
import pytest
from pgvector.asyncpg import register_vector

from ragapi.contract import RagIndexSpec
from ragapi.embedded import EmbeddedStack
from ragapi.ingest import DocumentUpload, Ingestor
from ragapi.parsing import PLAIN
from ragapi.store import search as store_search
from ragapi.store.db import create_pool
from ragapi.store.documents import COPY_COLUMNS
from ragapi.store.indexes import (
    build_hnsw,
    bump_content_version,
    content_version,
    drop_index,
    ensure_index,
    get_index,
    hnsw_index_name,
)
from ragapi.store.migrations import Migration, bundled_migrations, migrate
from ragapi.store.search import Candidate, SearchFilters, VectorResult, text_search, vector_search
from ragapi.store.tenancy import set_tenant
from tests.hashing_embedder import HashingEmbedder
from tests.support.databases import fresh_database, on_database

pytestmark = pytest.mark.integration
DIM = 8


@pytest.fixture()
async def conn(stack: EmbeddedStack) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(stack.postgres.url)
    await migrate(c)
    await register_vector(c)
    try:
        yield c
    finally:
        await c.close()


async def test_concurrent_migrations_apply_once(stack: EmbeddedStack) -> None:
    """Two pods starting at once: the advisory lock serialises them; each version once."""
    url = on_database(stack.postgres.url, await fresh_database(stack, "mig"))
    extra = Migration(9999, "slow_probe", "SELECT pg_sleep(0.3); CREATE TABLE probe (id int);")
    migrations = [*bundled_migrations(), extra]
    conns = [await asyncpg.connect(url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c, migrations) for c in conns))
        applied = sorted(v for r in results for v in r)
        assert applied == sorted(m.version for m in migrations)  # each exactly once, by someone
        rows = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in migrations]
        # A changed, already-applied migration is an error, not a silent re-run.
        changed = [*bundled_migrations(), Migration(9999, "slow_probe", "SELECT 1;")]
        with pytest.raises(Exception, match="changed after it was applied"):
            await migrate(conns[0], changed)
    finally:
        for c in conns:
            await c.close()


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


async def _index_with_rows(
    conn: asyncpg.Connection, rows: int, tagged_every: int, texts: list[str] | None = None
) -> tuple[str, np.ndarray]:
    """An index of ``rows`` chunks with random vectors; chunk i's text is ``texts[i]``
    (default ``chunk i``) and every ``tagged_every``-th chunk carries the tag ``tag``."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    spec = RagIndexSpec.model_validate(
        {"embedding": {"dimensions": DIM}, "hnsw": {"m": 4, "efConstruction": 8}}
    )
    record = await ensure_index(conn, name, spec)
    doc = uuid.uuid4()
    await conn.execute(
        """INSERT INTO documents (id, tenant, index_name, source, version, content_type, content_hash)
           VALUES ($1, 'default', $2, 's', 1, 'text/plain', '\\x00')""",
        doc,
        name,
    )
    vectors = _unit(np.random.default_rng(7), rows)
    ids = [
        r["id"]
        for r in await conn.fetch(
            "SELECT nextval('chunk_ids') AS id FROM generate_series(1, $1)", rows
        )
    ]
    await conn.copy_records_to_table(
        record.table,
        records=[
            (
                ids[i],
                doc,
                "default",
                "s",
                1,
                "",
                texts[i] if texts else f"chunk {i}",
                2,
                b"h",
                ["tag"] if i % tagged_every == 0 else [],
                "{}",
                vectors[i],
            )
            for i in range(rows)
        ],
        columns=COPY_COLUMNS,
    )
    await build_hnsw(conn, name)
    return name, vectors


async def test_filtered_search_returns_k_rows_by_every_strategy(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, vectors = await _index_with_rows(conn, 3000, tagged_every=50)  # 60 tagged rows
    record = await get_index(conn, name)
    query = vectors[1]
    tagged = [i for i in range(3000) if i % 50 == 0]
    exact = sorted(tagged, key=lambda i: -float(vectors[i] @ query))[:10]

    async def run(**kw: object) -> store_search.VectorResult:
        async with conn.transaction():
            await set_tenant(conn, "default")  # the filtered paths read the transaction's tenant
            return await vector_search(
                conn,
                record,
                "default",
                query,
                k=10,
                ef_search=10,
                filters=SearchFilters(tags=["tag"]),
                iterative=False,
                **kw,
            )  # type: ignore[arg-type]

    selective = await run()
    assert selective.strategy == "exact"
    assert [c.text for c in selective.candidates] == [f"chunk {i}" for i in exact]

    # Pretend the filter is broad: the index path runs (the planner may still prefer the
    # GIN bitmap for 3000 rows), escalating ef_search until k rows come back.
    monkeypatch.setattr(store_search, "EXACT_SCAN_MAX_ROWS", 10)
    broad = await run()
    assert broad.strategy in ("hnsw", "hnsw-escalated", "exact")
    assert len(broad.candidates) == 10
    recall = len({c.text for c in broad.candidates} & {f"chunk {i}" for i in exact}) / 10
    assert recall >= 0.8

    unfiltered = await vector_search(
        conn, record, "default", query, k=10, ef_search=40, filters=SearchFilters(), iterative=False
    )
    assert unfiltered.strategy == "hnsw" and len(unfiltered.candidates) == 10
    # A query for another tenant sees nothing (the tenant is part of every query).
    other = await vector_search(
        conn,
        record,
        "someone-else",
        query,
        k=10,
        ef_search=40,
        filters=SearchFilters(),
        iterative=False,
    )
    assert other.candidates == []


async def test_full_text_ranks_chunks_with_more_question_words_first(
    conn: asyncpg.Connection,
) -> None:
    """Migration 0005's two tiers: chunks holding two or more of the question's words come
    first; chunks with one of them only fill up to k; chunks with none never come back."""
    texts = [
        "Rotate the signing key before it expires.",  # both words
        "Key, key, key: every key here is a key of some key.",  # one word, many times
        "Operators rotate certificates; rotating them weekly is wise.",  # the other word
        "Nothing relevant: disk usage and log retention.",  # neither
        "To rotate a key, create the new key first, then rotate clients over.",  # both, often
    ]
    name, _ = await _index_with_rows(conn, len(texts), tagged_every=1000, texts=texts)
    record = await get_index(conn, name)

    async def top(question: str, k: int = 10, tenant: str = "default") -> list[str]:
        async with conn.transaction(readonly=True):
            await set_tenant(conn, tenant)
            hits = await text_search(conn, record, tenant, question, k=k, filters=SearchFilters())
        return [h.text for h in hits]

    both = await top("How do I rotate a key?")
    assert set(both[:2]) == {texts[0], texts[4]}  # two-word chunks first, among themselves
    assert set(both[2:]) == {texts[1], texts[2]}  # then one-word chunks fill up
    assert texts[3] not in both
    # k reached by the first tier: one-word chunks are not ranked at all.
    assert set(await top("How do I rotate a key?", k=2)) == {texts[0], texts[4]}
    # One word: a single tier, the chunk saying it most often first.
    single = await top("key")
    assert single[0] == texts[1] and set(single) == {texts[0], texts[1], texts[4]}
    # Quotes, backslashes and hyphenated words are data, not tsquery syntax.
    assert texts[0] in await top("the signing-key's O'Brien \\ rotate ' | & !")
    # Only stop words: no full-text candidates (the vector list still answers).
    assert await top("how do I the of a") == []
    # Over 12 words: one tier, every chunk with any of them ranked.
    long_question = "rotate key " + " ".join(f"word{i}" for i in range(12))
    assert set(await top(long_question)) == {texts[0], texts[1], texts[2], texts[4]}
    # Another tenant's transaction sees none of these chunks.
    assert await top("How do I rotate a key?", tenant="someone-else") == []
    # The tsvector is kept in the row; a table from before that is altered by ensure_index.
    storage = (
        "SELECT attstorage FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'tsv'"
    )
    assert await conn.fetchval(storage, record.table) == b"m"
    await conn.execute(f'ALTER TABLE "{record.table}" ALTER COLUMN tsv SET STORAGE EXTENDED')
    assert await conn.fetchval(storage, record.table) == b"x"
    await ensure_index(conn, name, record.spec)
    assert await conn.fetchval(storage, record.table) == b"m"


async def test_one_statement_hybrid_search_returns_both_lists(
    conn: asyncpg.Connection,
) -> None:
    """The unfiltered hybrid path (one UNION ALL statement) returns exactly what the vector
    and full-text statements return on their own, in the same order, and nothing for
    another tenant."""
    texts = [
        f"chunk {i} about {'rotation keys' if i % 3 == 0 else 'disk usage'}" for i in range(60)
    ]
    name, vectors = await _index_with_rows(conn, len(texts), tagged_every=1000, texts=texts)
    record = await get_index(conn, name)
    question = "how are keys rotated"

    async def in_tx(
        tenant: str,
    ) -> tuple[VectorResult, list[Candidate], VectorResult, list[Candidate]]:
        async with conn.transaction(readonly=True):
            await set_tenant(conn, tenant)
            one_vec, one_text = await store_search.hybrid_search(
                conn, record, tenant, vectors[4], question, k=12, ef_search=40
            )
            two_vec = await vector_search(
                conn,
                record,
                tenant,
                vectors[4],
                k=12,
                ef_search=40,
                filters=SearchFilters(),
                iterative=False,
            )
            two_text = await text_search(
                conn, record, tenant, question, k=12, filters=SearchFilters()
            )
        return one_vec, one_text, two_vec, two_text

    one_vec, one_text, two_vec, two_text = await in_tx("default")
    assert one_vec == two_vec  # same candidates, scores, strategy and ef_search
    assert one_vec.strategy == "hnsw" and len(one_vec.candidates) == 12
    assert one_vec.candidates[0].text == texts[4]
    assert one_text == two_text and len(one_text) == 12
    assert all("rotation keys" in c.text for c in one_text)
    other_vec, other_text, _, _ = await in_tx("someone-else")
    assert other_vec.candidates == [] and other_text == []
    # Only stop words: no full-text list, the vector list still answers.
    async with conn.transaction(readonly=True):
        await set_tenant(conn, "default")
        stop_vec, stop_text = await store_search.hybrid_search(
            conn, record, "default", vectors[4], "how do I the of a", k=12, ef_search=40
        )
    assert stop_text == [] and stop_vec == one_vec


async def test_hnsw_rebuild_swaps_while_queries_run(
    conn: asyncpg.Connection, stack: EmbeddedStack
) -> None:
    name, vectors = await _index_with_rows(conn, 2000, tagged_every=1000)
    old = (await get_index(conn, name)).hnsw_index
    assert old == hnsw_index_name(name, (await get_index(conn, name)).spec)

    pool = await asyncpg.create_pool(
        stack.postgres.url, min_size=2, max_size=2, init=register_vector
    )
    stop = asyncio.Event()
    failures: list[BaseException] = []
    served = 0

    async def query_loop() -> None:
        nonlocal served
        record = await get_index(pool, name)
        while not stop.is_set():
            try:
                async with pool.acquire() as c, c.transaction():
                    res = await vector_search(
                        c,
                        record,
                        "default",
                        vectors[served % 2000],
                        k=5,
                        ef_search=20,
                        filters=SearchFilters(),
                        iterative=False,
                    )
                assert len(res.candidates) == 5
                served += 1
            except BaseException as exc:  # every failure counts
                failures.append(exc)
                return

    loop_task = asyncio.create_task(query_loop())
    try:
        spec = (await get_index(conn, name)).spec.model_copy(
            update={
                "hnsw": RagIndexSpec.model_validate({"hnsw": {"m": 8, "efConstruction": 32}}).hnsw
            }
        )
        await ensure_index(conn, name, spec)
        rebuilt = await build_hnsw(conn, name)
        again = await build_hnsw(conn, name)  # idempotent
    finally:
        await asyncio.sleep(0.2)
        stop.set()
        await loop_task
        await pool.close()
    assert failures == []
    assert served > 0
    assert rebuilt.hnsw_index == f"{rebuilt.table}_hnsw_cosine_m8_ef32" != old
    assert again.hnsw_index == rebuilt.hnsw_index
    assert rebuilt.hnsw_params == {"m": 8, "efConstruction": 32, "distance": "cosine"}
    names = {
        r["indexname"]
        for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = $1", rebuilt.table
        )
    }
    assert rebuilt.hnsw_index in names and old not in names


async def test_staging_table_is_reused_and_empties_at_commit_and_rollback(
    stack: EmbeddedStack, conn: asyncpg.Connection
) -> None:
    """write_version's staging table outlives each write on a pooled connection (created
    once, ON COMMIT DELETE ROWS): a later write must insert only its own rows, also after
    a write that was rolled back."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    record = await ensure_index(
        conn, name, RagIndexSpec.model_validate({"embedding": {"dimensions": DIM}})
    )
    pool = await create_pool(stack.postgres.app_url, min_size=1, max_size=1)  # one connection
    ingestor = Ingestor(pool, max_bytes=1 << 20)
    embedder = HashingEmbedder(DIM)

    def upload(source: str, text: str) -> DocumentUpload:
        return DocumentUpload(source=source, data=text.encode(), content_type=PLAIN)

    try:
        first = await ingestor.ingest(record, "default", upload("a.txt", "Alpha text."), embedder)
        assert first.chunks_written == 1
        # A write that fails after staging rows rolls them back with it. (Had they stayed,
        # the next write would move them in again: a duplicate chunk id.)
        staging = f'"staging_{record.table}_{DIM}"'
        async with pool.acquire() as c:
            with pytest.raises(RuntimeError):
                async with c.transaction():
                    await set_tenant(c, "default")
                    await c.execute(f'INSERT INTO {staging} SELECT * FROM "{record.table}"')
                    assert await c.fetchval(f"SELECT count(*) FROM {staging}") == 1
                    raise RuntimeError("the write fails")
            assert await c.fetchval(f"SELECT count(*) FROM {staging}") == 0
        second = await ingestor.ingest(record, "default", upload("b.txt", "Beta text."), embedder)
        assert second.chunks_written == 1
        async with pool.acquire() as c:
            assert await c.fetchval(f"SELECT count(*) FROM {staging}") == 0
    finally:
        await pool.close()
    rows = await conn.fetch(f'SELECT document_id FROM "{record.table}"')
    assert sorted(str(r["document_id"]) for r in rows) == sorted(
        [str(first.document.id), str(second.document.id)]
    )


async def test_changing_dimensions_is_refused(conn: asyncpg.Connection) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await ensure_index(conn, name, RagIndexSpec.model_validate({"embedding": {"dimensions": 8}}))
    with pytest.raises(Exception, match="holds 8-dimensional vectors; cannot change to 16"):
        await ensure_index(
            conn, name, RagIndexSpec.model_validate({"embedding": {"dimensions": 16}})
        )


async def test_content_versions_are_never_reused_by_a_recreated_index(
    conn: asyncpg.Connection,
) -> None:
    # The answer cache's keys hold (index name, content version): an index dropped and
    # created again must not meet its predecessor's versions, or old answers come back.
    name = f"t-{uuid.uuid4().hex[:10]}"
    spec = RagIndexSpec.model_validate({"embedding": {"dimensions": DIM}})
    first = await ensure_index(conn, name, spec)
    seen = {first.content_version}
    async with conn.transaction():
        seen.add(await bump_content_version(conn, name))
        seen.add(await bump_content_version(conn, name))
    assert await content_version(conn, name) == max(seen)
    assert await drop_index(conn, name)
    again = await ensure_index(conn, name, spec)
    assert again.content_version > max(seen)
    async with conn.transaction():
        assert await bump_content_version(conn, name) > again.content_version
    assert len(seen) == 3  # each bump a new version
    await drop_index(conn, name)
