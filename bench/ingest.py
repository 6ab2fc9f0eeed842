"""Part 3: ingestion throughput against the raw embedder, and binary vs text COPY.

The pipeline is ``Ingestor.ingest`` with the real MiniLM embedder on multi-section
Markdown documents, written into an index that already holds rows and an HNSW index
(as a live index does: every insert also updates HNSW). Beside it, on the very same
chunk texts, in the same batches: the raw embedder (``LocalEmbedder.embed_sync``), and
the pipeline with a precomputed-vector embedder (everything but the model). The three
run interleaved document by document, in rotating order, so drift in machine speed
falls on all three alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
from pgvector import Vector

from bench.common import (
    TENANT,
    Bench,
    ChunkSet,
    PrecomputedEmbedder,
    connect,
    copy_chunks,
    environment,
    index_spec,
    insert_documents,
    reserve_ids,
    save,
    table,
    verdict,
)
from bench.data import TextModel, clustered_vectors, documents_by_cluster
from ragapi.ingest import DocumentUpload, Ingestor, prepare
from ragapi.parsing import MARKDOWN
from ragapi.store.db import create_pool
from ragapi.store.documents import COPY_COLUMNS
from ragapi.store.indexes import IndexRecord, build_hnsw, ensure_index, quote_ident

PIPELINE_INDEX = "bench-ingest"
NO_MODEL_INDEX = "bench-ingest-nomodel"
COPY_INDEX = "bench-copy"
GOAL_OVERHEAD = 0.10
TEXT_COPY_BATCH = 1000  # rows per chunk of the streamed text COPY
ORDERS = (
    ("raw", "pipeline", "no_model"),
    ("pipeline", "raw", "no_model"),
    ("raw", "no_model", "pipeline"),
)


def synthetic_rows(n: int, seed: int) -> ChunkSet:
    """Clustered vectors with chunk-length texts, grouped into 20-row documents."""
    vectors, labels = clustered_vectors(n, seed=seed)
    rng = np.random.default_rng(seed)
    docs = documents_by_cluster(labels, 20, rng)
    order = np.concatenate(docs)
    model = TextModel(n_topics=200, seed=seed)
    return ChunkSet(
        vectors=np.ascontiguousarray(vectors[order]),
        texts=[model.chunk_text(int(labels[i]) % 200) for i in order],
        doc_of_row=np.repeat(np.arange(len(docs)), [len(d) for d in docs]).astype(np.int64),
        row_tags=[[] for _ in range(n)],
        n_docs=len(docs),
    )


async def prefilled_index(bench: Bench, name: str, rows: ChunkSet) -> IndexRecord:
    """An index that already serves: ``rows`` loaded and its HNSW index built."""
    conn = await connect(bench.dsn)
    try:
        record = await ensure_index(conn, name, index_spec(name))
        await insert_documents(conn, name, "prefill", rows)
        await copy_chunks(conn, record, rows, "prefill")
        await conn.execute(f"VACUUM ANALYZE {quote_ident(record.table)}")
        record = await build_hnsw(conn, name)
        # Flush the load's dirty pages now rather than during the timed run.
        await conn.execute("CHECKPOINT")
        return record
    finally:
        await conn.close()


@dataclass(frozen=True)
class Doc:
    upload: DocumentUpload
    texts: list[str]
    tokens: int


def make_documents(n: int, record: IndexRecord, seed: int = 11) -> list[Doc]:
    model = TextModel(n_topics=50, seed=seed)
    docs = []
    for i in range(n):
        data = model.markdown_document(i % 50).encode()
        upload = DocumentUpload(
            source=f"guide-{i:04d}.md", data=data, content_type=MARKDOWN, tags=["guide"]
        )
        _, chunks = prepare(upload, record)  # the pipeline's own parse and chunk
        docs.append(Doc(upload, [c.text for c in chunks], sum(c.token_count for c in chunks)))
    return docs


async def interleaved(
    bench: Bench, docs: list[Doc], pipeline: IndexRecord, no_model: IndexRecord
) -> dict[str, Any]:
    embedder = bench.embedder()
    # The precomputed vectors come from this same model, on these same texts.
    vectors: dict[str, list[float]] = {}
    await asyncio.to_thread(embedder.embed_sync, docs[0].texts)  # load and warm the model
    pool = await create_pool(bench.dsn, min_size=1, max_size=2)
    ingestor = Ingestor(pool, max_bytes=10 * 1024 * 1024)
    raw_s = pipe_s = bare_s = 0.0
    written = 0
    try:
        for i, doc in enumerate(docs):

            async def raw(doc: Doc = doc) -> None:
                # embed_sync blocks: run it off the loop, as the pipeline runs the model.
                out = await asyncio.to_thread(embedder.embed_sync, doc.texts)
                vectors.update(zip(doc.texts, out, strict=True))

            async def full(doc: Doc = doc) -> None:
                nonlocal written
                result = await ingestor.ingest(pipeline, TENANT, doc.upload, embedder)
                written += result.chunks_written

            async def bare(doc: Doc = doc) -> None:
                await ingestor.ingest(
                    no_model, TENANT, doc.upload, PrecomputedEmbedder(vectors, embedder.model)
                )

            steps = {"raw": raw, "pipeline": full, "no_model": bare}
            # Rotate the order; the precomputed run needs this document's raw vectors first.
            order = ORDERS[i % len(ORDERS)]
            for name in order:
                started = time.perf_counter()
                await steps[name]()
                elapsed = time.perf_counter() - started
                if name == "raw":
                    raw_s += elapsed
                elif name == "pipeline":
                    pipe_s += elapsed
                else:
                    bare_s += elapsed
    finally:
        await pool.close()
    texts = [t for d in docs for t in d.texts]
    started = time.perf_counter()
    await asyncio.to_thread(embedder.embed_sync, texts)
    all_at_once_s = time.perf_counter() - started
    return {
        "documents": len(docs),
        "chunks": len(texts),
        "chunks_written": written,
        "mean_tokens_per_chunk": sum(d.tokens for d in docs) / len(texts),
        "seconds": {
            "raw_per_document": raw_s,
            "raw_all_at_once": all_at_once_s,
            "pipeline": pipe_s,
            "pipeline_without_model": bare_s,
        },
    }


# ------------------------------------------------------------------ COPY


def _text_field(value: str) -> str:
    # COPY text format: backslash, tab, newline and carriage return must be escaped.
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def text_line(rec: Sequence[Any]) -> str:
    """One row of ``COPY ... (FORMAT text)`` for ``COPY_COLUMNS``; the vector as
    pgvector-python writes it in text (``Vector.to_text``)."""
    (
        row_id,
        doc_id,
        tenant,
        source,
        version,
        heading,
        text,
        tokens,
        digest,
        tags,
        metadata,
        emb,
    ) = rec
    fields = [
        str(row_id),
        str(doc_id),
        _text_field(tenant),
        _text_field(source),
        str(version),
        _text_field(heading),
        _text_field(text),
        str(tokens),
        "\\\\x" + digest.hex(),
        _text_field("{" + ",".join(tags) + "}"),
        _text_field(metadata),
        Vector(emb).to_text(),
    ]
    return "\t".join(fields) + "\n"


async def text_source(records: list[tuple[Any, ...]]) -> AsyncIterator[bytes]:
    for start in range(0, len(records), TEXT_COPY_BATCH):
        yield "".join(text_line(r) for r in records[start : start + TEXT_COPY_BATCH]).encode()


async def copy_comparison(bench: Bench, n: int, n_executemany: int) -> dict[str, Any]:
    rows = synthetic_rows(n, seed=23)
    conn = await connect(bench.dsn)
    out: dict[str, Any] = {"rows": n}
    try:
        record = await ensure_index(conn, COPY_INDEX, index_spec(COPY_INDEX))
        await insert_documents(conn, COPY_INDEX, TENANT, rows)
        await reserve_ids(conn, rows)
        records = list(rows.records(TENANT))  # both formats start from the same tuples
        table_name = quote_ident(record.table)

        async def fresh() -> None:
            await conn.execute(f"TRUNCATE {table_name}")
            await conn.execute("CHECKPOINT")

        async def count() -> int:
            value: int = await conn.fetchval(f"SELECT count(*) FROM {table_name}")
            return value

        await fresh()
        started = time.perf_counter()
        await conn.copy_records_to_table(record.table, records=records, columns=COPY_COLUMNS)
        out["binary_copy"] = time.perf_counter() - started
        assert await count() == n

        started = time.perf_counter()
        for start in range(0, n, TEXT_COPY_BATCH):  # formatting alone, nothing sent
            "".join(text_line(r) for r in records[start : start + TEXT_COPY_BATCH]).encode()
        out["text_format_only"] = time.perf_counter() - started
        await fresh()
        started = time.perf_counter()
        await conn.copy_to_table(
            record.table, source=text_source(records), columns=COPY_COLUMNS, format="text"
        )
        out["text_copy"] = time.perf_counter() - started
        assert await count() == n

        await fresh()
        placeholders = ", ".join(f"${i}" for i in range(1, len(COPY_COLUMNS) + 1))
        insert = f"INSERT INTO {table_name} ({', '.join(COPY_COLUMNS)}) VALUES ({placeholders})"
        started = time.perf_counter()
        await conn.executemany(insert, records[:n_executemany])
        out["executemany"] = time.perf_counter() - started
        out["executemany_rows"] = n_executemany
        assert await count() == n_executemany
        await fresh()
        out["vector_only"] = await vector_only_copy(conn, rows.vectors)
    finally:
        await conn.close()
    return out


async def vector_only_copy(
    conn: asyncpg.Connection, vectors: np.ndarray[Any, Any]
) -> dict[str, float]:
    """Binary vs text COPY of (id, embedding) alone: the vector encoding, isolated."""
    await conn.execute("CREATE TEMP TABLE bench_vectors (id bigint, embedding vector(384))")
    records = [(i, v) for i, v in enumerate(vectors)]
    try:
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_vectors", records=records)
        binary = time.perf_counter() - started
        await conn.execute("TRUNCATE bench_vectors")

        async def source() -> AsyncIterator[bytes]:
            for start in range(0, len(records), TEXT_COPY_BATCH):
                part = records[start : start + TEXT_COPY_BATCH]
                yield "".join(f"{i}\t{Vector(v).to_text()}\n" for i, v in part).encode()

        started = time.perf_counter()
        await conn.copy_to_table("bench_vectors", source=source(), format="text")
        text = time.perf_counter() - started
    finally:
        await conn.execute("DROP TABLE bench_vectors")
    return {"binary_copy": binary, "text_copy": text}


# ------------------------------------------------------------------ the part


def run(bench: Bench) -> dict[str, Any]:
    n_docs = 12 if bench.quick else 40
    prefill = 5_000 if bench.quick else 10_000
    n_copy = 20_000 if bench.quick else 100_000
    n_exec = 5_000 if bench.quick else 10_000
    bench.step(f"ingest: two indexes pre-filled with {prefill:,} rows each, HNSW built")
    pipeline = bench.run(prefilled_index(bench, PIPELINE_INDEX, synthetic_rows(prefill, seed=3)))
    no_model = bench.run(prefilled_index(bench, NO_MODEL_INDEX, synthetic_rows(prefill, seed=4)))
    docs = make_documents(n_docs, pipeline)
    n_chunks = sum(len(d.texts) for d in docs)
    bench.step(
        f"ingest: {n_docs} Markdown documents ({n_chunks} chunks): raw embedder, pipeline, "
        "pipeline without the model, interleaved"
    )
    ingest = bench.run(interleaved(bench, docs, pipeline, no_model))
    bench.step(f"ingest: binary vs text COPY of {n_copy:,} chunk rows")
    copy = bench.run(copy_comparison(bench, n_copy, n_exec))
    s = ingest["seconds"]
    overhead = s["pipeline"] / s["raw_per_document"] - 1.0
    data = {
        "prefilled_rows": prefill,
        "ingest": ingest,
        "copy": copy,
        "goal": {
            "overhead": overhead,
            "raw_over_pipeline": s["raw_per_document"] / s["pipeline"],
            "overhead_vs_all_at_once": s["pipeline"] / s["raw_all_at_once"] - 1.0,
            "met": overhead <= GOAL_OVERHEAD,
        },
    }
    report(bench, data)
    path = save(bench, "ingest", data, environment({}))
    bench.console.print(f"[dim]wrote {path}[/dim]")
    return data


def report(bench: Bench, data: dict[str, Any]) -> None:
    ing = data["ingest"]
    s = ing["seconds"]
    chunks = ing["chunks"]
    raw = s["raw_per_document"]

    def row(name: str, seconds: float) -> list[str]:
        return [
            name,
            f"{seconds:.2f}",
            f"{chunks / seconds:,.1f}",
            f"{ing['documents'] / seconds:.2f}",
            f"{seconds / raw:.3f}×",
        ]

    bench.console.print(
        table(
            f"Ingest · {ing['documents']} Markdown documents, {chunks} chunks "
            f"(mean {ing['mean_tokens_per_chunk']:.0f} word pieces), into indexes pre-filled with "
            f"{data['prefilled_rows']:,} rows + HNSW",
            ["measured (same chunk texts)", "seconds", "chunks/s", "docs/s", "time vs raw"],
            [
                row("raw embedder, per document (the pipeline's batches)", raw),
                row("raw embedder, all chunks in one call", s["raw_all_at_once"]),
                row("Ingestor.ingest with MiniLM (the pipeline)", s["pipeline"]),
                row("Ingestor.ingest, precomputed vectors (no model)", s["pipeline_without_model"]),
            ],
            caption=f"{ing['chunks_written']} of {chunks} chunks written; interleaved per doc.",
        )
    )
    g = data["goal"]
    bench.console.print(
        f"Ingestion overhead over the raw embedder: pipeline/raw − 1 = {g['overhead']:+.1%} "
        f"(raw/pipeline = {g['raw_over_pipeline']:.3f}); vs one-call batching "
        f"{g['overhead_vs_all_at_once']:+.1%}. Goal ≤ {GOAL_OVERHEAD:.0%}: {verdict(g['met'])}"
    )
    c = data["copy"]
    n = c["rows"]
    binary = c["binary_copy"]

    def crow(name: str, rows: int, seconds: float) -> list[str]:
        return [
            name,
            f"{rows:,}",
            f"{seconds:.2f}",
            f"{rows / seconds:,.0f}",
            f"{(rows / seconds) / (n / binary):.3f}×",
        ]

    v = c["vector_only"]
    bench.console.print(
        table(
            "Ingest · writing chunk rows: binary vs text COPY (store's table: tsvector, GIN, FK)",
            ["method", "rows", "seconds", "rows/s", "rate vs binary"],
            [
                crow("binary COPY (copy_records_to_table, as the store)", n, binary),
                crow("text COPY (Vector.to_text, streamed), total", n, c["text_copy"]),
                crow("  of which: formatting text in Python alone", n, c["text_format_only"]),
                crow(
                    "executemany INSERT (binary parameters)",
                    c["executemany_rows"],
                    c["executemany"],
                ),
                [
                    "vector-only temp table (id, embedding): binary COPY",
                    f"{n:,}",
                    f"{v['binary_copy']:.2f}",
                    f"{n / v['binary_copy']:,.0f}",
                    "",
                ],
                [
                    "vector-only temp table (id, embedding): text COPY",
                    f"{n:,}",
                    f"{v['text_copy']:.2f}",
                    f"{n / v['text_copy']:,.0f}",
                    f"binary {v['text_copy'] / v['binary_copy']:.1f}× faster",
                ],
            ],
            caption="The chunk table computes to_tsvector(text) on every row and updates GIN and "
            "btree indexes, whatever the wire format; the vector-only rows isolate the encoding.",
        )
    )
