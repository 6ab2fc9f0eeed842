"""Index registry and per-index DDL: the chunk table, its full-text and HNSW indexes.

Each RagIndex gets its own chunk table because each has its own vector dimension.
Names are DNS-1123 labels (validated by the contract), so ``chunks_<name>`` with dashes
turned into underscores is a safe, collision-free identifier; it is still quoted.

An HNSW index is named after its parameters. Changing them builds the new index beside
the old one with ``CREATE INDEX CONCURRENTLY`` and then drops the old one concurrently:
queries keep an index the whole time, and a crash half-way leaves either a valid old
index or a valid new one (an invalid leftover is dropped and rebuilt on the next try).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from ragapi.contract import Distance, RagIndexSpec, is_valid_name
from ragapi.errors import Conflict, NotFound

log = structlog.get_logger(__name__)

# pgvector operator class and SQL operator for each distance.
OPCLASS = {
    Distance.COSINE: "vector_cosine_ops",
    Distance.L2: "vector_l2_ops",
    Distance.INNER_PRODUCT: "vector_ip_ops",
}
OPERATOR = {Distance.COSINE: "<=>", Distance.L2: "<->", Distance.INNER_PRODUCT: "<#>"}
PLAIN_STORAGE_MAX_DIMENSIONS = 1024  # 4 kB of floats


def chunk_table(index: str) -> str:
    if not is_valid_name(index):
        raise ValueError(f"invalid index name {index!r}")
    return "chunks_" + index.replace("-", "_")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def hnsw_index_name(index: str, spec: RagIndexSpec) -> str:
    h = spec.hnsw
    return f"{chunk_table(index)}_hnsw_{spec.distance.value.lower()}_m{h.m}_ef{h.ef_construction}"


@dataclass(frozen=True)
class IndexRecord:
    name: str
    spec: RagIndexSpec
    dimensions: int
    content_version: int
    hnsw_index: str | None
    hnsw_params: dict[str, Any] | None
    hnsw_built_at: Any
    hnsw_build_seconds: float | None

    @property
    def table(self) -> str:
        return chunk_table(self.name)


def _record(row: asyncpg.Record) -> IndexRecord:
    return IndexRecord(
        name=row["name"],
        spec=RagIndexSpec.model_validate(json.loads(row["spec"])),
        dimensions=row["dimensions"],
        content_version=row["content_version"],
        hnsw_index=row["hnsw_index"],
        hnsw_params=json.loads(row["hnsw_params"]) if row["hnsw_params"] else None,
        hnsw_built_at=row["hnsw_built_at"],
        hnsw_build_seconds=row["hnsw_build_seconds"],
    )


async def get_index(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> IndexRecord:
    row = await conn.fetchrow("SELECT * FROM rag_indexes WHERE name = $1", name)
    if row is None:
        raise NotFound(f"index {name!r} does not exist")
    return _record(row)


async def list_indexes(conn: asyncpg.Connection | asyncpg.Pool) -> list[IndexRecord]:
    return [_record(r) for r in await conn.fetch("SELECT * FROM rag_indexes ORDER BY name")]


def table_ddl(index: str, spec: RagIndexSpec) -> list[str]:
    """DDL for the chunk table and its non-vector indexes, all idempotent."""
    table = quote_ident(chunk_table(index))
    base = chunk_table(index)
    dim = spec.embedding.dimensions
    # pgvector stores vectors out of line (TOAST) by default; with chunk text beside them
    # every vector lands there and an exact scan reads twice the pages (measured 3x slower
    # at 100k). Kept in the row while a vector fits comfortably in an 8 kB page.
    storage = "STORAGE PLAIN " if dim <= PLAIN_STORAGE_MAX_DIMENSIONS else ""
    # The tsvector stays in the row too (compressed if need be): ranking full-text matches
    # reads it for every matching chunk, and fetching each from TOAST made that the
    # slowest part of /search (p99 17 ms vs 6 ms for 1k matches among 5k chunks).
    return [
        f"""CREATE TABLE IF NOT EXISTS {table} (
            id              bigint PRIMARY KEY,
            document_id     uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
            tenant          text NOT NULL,
            source          text NOT NULL,
            first_version   integer NOT NULL,
            retired_version integer,
            active          boolean NOT NULL DEFAULT true,
            heading         text NOT NULL DEFAULT '',
            text            text NOT NULL,
            token_count     integer NOT NULL,
            content_hash    bytea NOT NULL,
            tags            text[] NOT NULL DEFAULT '{{}}',
            metadata        jsonb NOT NULL DEFAULT '{{}}',
            tsv             tsvector STORAGE MAIN
                            GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
            embedding       vector({dim}) {storage}NOT NULL
        )""",
        f"CREATE INDEX IF NOT EXISTS {quote_ident(base + '_tsv')} ON {table} "
        "USING gin (tsv) WHERE active",
        f"CREATE INDEX IF NOT EXISTS {quote_ident(base + '_tags')} ON {table} "
        "USING gin (tags) WHERE active",
        f"CREATE INDEX IF NOT EXISTS {quote_ident(base + '_metadata')} ON {table} "
        "USING gin (metadata jsonb_path_ops) WHERE active",
        f"CREATE INDEX IF NOT EXISTS {quote_ident(base + '_document')} ON {table} (document_id)",
        # Tenant isolation in the database (see migration 0003), and the tsvector's storage
        # for tables created before it was set here (rows written from then on get it).
        # Guarded, because these take an exclusive lock and ensure_index runs on every start.
        f"""DO $$ BEGIN
              IF (SELECT attstorage FROM pg_attribute
                  WHERE attrelid = '{table}'::regclass AND attname = 'tsv') <> 'm' THEN
                ALTER TABLE {table} ALTER COLUMN tsv SET STORAGE MAIN;
              END IF;
              IF NOT (SELECT relforcerowsecurity FROM pg_class WHERE oid = '{table}'::regclass)
              THEN
                ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
                ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
              END IF;
              IF NOT EXISTS (SELECT 1 FROM pg_policies
                             WHERE tablename = '{base}' AND policyname = 'tenant_isolation') THEN
                CREATE POLICY tenant_isolation ON {table}
                  USING (tenant = current_setting('ragline.tenant', true))
                  WITH CHECK (tenant = current_setting('ragline.tenant', true));
              END IF;
            END $$""",
    ]


async def ensure_index(conn: asyncpg.Connection, name: str, spec: RagIndexSpec) -> IndexRecord:
    """Register the index and create its table; the HNSW index is built separately.

    Changing the vector dimension of an existing index is refused: its stored vectors
    would be meaningless. Every other field may change.
    """
    async with conn.transaction():
        # Serialise concurrent ensures of one index across pods.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ragline-index:' || $1))", name)
        row = await conn.fetchrow("SELECT * FROM rag_indexes WHERE name = $1 FOR UPDATE", name)
        spec_json = spec.model_dump_json(by_alias=True)
        if row is not None and row["dimensions"] != spec.embedding.dimensions:
            raise Conflict(
                f"index {name!r} holds {row['dimensions']}-dimensional vectors; "
                f"cannot change to {spec.embedding.dimensions} (create a new index)"
            )
        if row is None:
            await conn.execute(
                """INSERT INTO rag_indexes (name, dimensions, distance, embedding_model, spec)
                   VALUES ($1, $2, $3, $4, $5::jsonb)""",
                name,
                spec.embedding.dimensions,
                spec.distance.value,
                spec.embedding.model,
                spec_json,
            )
        else:
            await conn.execute(
                """UPDATE rag_indexes SET distance = $2, embedding_model = $3, spec = $4::jsonb,
                          updated_at = now()
                   WHERE name = $1 AND spec <> $4::jsonb""",
                name,
                spec.distance.value,
                spec.embedding.model,
                spec_json,
            )
        for stmt in table_ddl(name, spec):
            await conn.execute(stmt)
    return await get_index(conn, name)


async def _index_valid(conn: asyncpg.Connection, index_name: str) -> bool | None:
    """True valid, False invalid leftover of a failed concurrent build, None absent."""
    row = await conn.fetchrow(
        """SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
           WHERE c.relname = $1 AND c.relkind = 'i'""",
        index_name,
    )
    return None if row is None else bool(row["indisvalid"])


async def build_hnsw(conn: asyncpg.Connection, name: str) -> IndexRecord:
    """Build (or rebuild with new parameters) the HNSW index, then swap it in.

    Must run outside a transaction: ``CREATE INDEX CONCURRENTLY`` cannot run inside one.
    Idempotent: when the index for the current parameters is valid and live, returns.
    """
    record = await get_index(conn, name)
    spec = record.spec
    target = hnsw_index_name(name, spec)
    table = quote_ident(record.table)
    state = await _index_valid(conn, target)
    if state is False:
        await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote_ident(target)}")
        state = None
    seconds = record.hnsw_build_seconds
    if state is None:
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(target)} ON {table} "
            f"USING hnsw (embedding {OPCLASS[spec.distance]}) "
            f"WITH (m = {spec.hnsw.m}, ef_construction = {spec.hnsw.ef_construction}) "
            "WHERE active"
        )
        seconds = time.perf_counter() - started
        log.info("hnsw_built", index=name, hnsw=target, seconds=round(seconds, 3))
    old = record.hnsw_index
    params = {
        "m": spec.hnsw.m,
        "efConstruction": spec.hnsw.ef_construction,
        "distance": spec.distance.value,
    }
    if old != target or state is None:
        await conn.execute(
            """UPDATE rag_indexes SET hnsw_index = $2, hnsw_params = $3::jsonb,
                      hnsw_built_at = now(), hnsw_build_seconds = $4, updated_at = now()
               WHERE name = $1""",
            name,
            target,
            json.dumps(params),
            seconds,
        )
    if old and old != target:
        # The new index is live and valid; dropping concurrently waits for running queries.
        await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote_ident(old)}")
    return await get_index(conn, name)


async def drop_index(conn: asyncpg.Connection, name: str) -> bool:
    """Drop an index's data (deletionPolicy Delete). Idempotent."""
    async with conn.transaction():
        await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(chunk_table(name))}")
        status: str = await conn.execute("DELETE FROM rag_indexes WHERE name = $1", name)
    return status != "DELETE 0"


async def content_version(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> int:
    """Read fresh on every cached lookup: a write on any pod must invalidate at once."""
    version: int | None = await conn.fetchval(
        "SELECT content_version FROM rag_indexes WHERE name = $1", name
    )
    if version is None:
        raise NotFound(f"index {name!r} does not exist")
    return version


async def bump_content_version(conn: asyncpg.Connection, name: str) -> int:
    version: int = await conn.fetchval(
        # From the shared sequence (migration 0006): never reused, even by an index
        # recreated under the same name.
        """UPDATE rag_indexes SET content_version = nextval('ragline_content_versions')
           WHERE name = $1 RETURNING content_version""",
        name,
    )
    return version
