"""Part 1: retrieval SQL at 10k and 100k chunks — HNSW recall and latency vs exact search.

Vectors are clustered like text embeddings (:mod:`bench.data`), loaded with binary COPY
into a real index table made by ``ensure_index``, indexed by ``build_hnsw``. Queries are
held-out points of the same distribution. Latency is that of ``vector_search`` inside a
read-only transaction, exactly as the retriever calls it (BEGIN, SET LOCAL, SELECT,
COMMIT: four round trips), and, for comparison, of the bare SELECT alone. Recall@10 is
against brute-force cosine in numpy over the very same float32 vectors.

Two experiments follow on the largest table, each answering a question the main table
raises: does a larger ``efConstruction`` fix the queries HNSW loses (rebuilt through
the store's own swap path), and what do exact scans cost when the vector stays in the
heap instead of TOAST (``STORAGE PLAIN``, a table of its own).
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from bench.common import (
    TENANT,
    Bench,
    ChunkSet,
    Latency,
    Vectors,
    connect,
    copy_chunks,
    environment,
    index_spec,
    insert_documents,
    ms,
    ratio,
    save,
    table,
    table_sizes,
    verdict,
)
from bench.data import (
    TextModel,
    clustered_vectors,
    documents_by_cluster,
    exact_topk,
    n_clusters,
    neighbour_profile,
    real_paragraphs,
    recall_at_k,
)
from ragapi.contract import RagIndexSpec
from ragapi.store.indexes import IndexRecord, build_hnsw, ensure_index, quote_ident
from ragapi.store.search import SearchFilters, VectorResult, has_iterative_scan, vector_search
from ragapi.store.tenancy import set_tenant

K = 10
EF_VALUES = (10, 20, 40, 80, 160)
EXPERIMENT_EF = (20, 40, 80)
FIRST_BUILD_EF_CONSTRUCTION = 64  # the first build; the contract's default is 256
EXPERIMENT_BUILDS = ((16, 128), (16, 256))  # (m, efConstruction) rebuilt beside 16/64
FILTER_EF = 40  # the contract's default efSearch
ROWS_PER_DOC = 20
TAG_SHARES = {"rare": 0.10, "tiny": 0.01}  # fraction of rows, tagged at random
TEAM_SHARE = 0.10  # fraction of documents (so topic-correlated rows)
GOAL_RECALL = 0.98
GOAL_P99_MS = 2.0
LAT = ("p50 ms", "p99 ms")
LOST = 0.5  # a query with recall below this found the wrong neighbourhood altogether
WARMUP = 50


@dataclass
class Dataset:
    n: int
    rows: ChunkSet
    queries: Vectors
    masks: dict[str, npt.NDArray[np.bool_]]


def make_dataset(n: int, n_queries: int, seed: int) -> Dataset:
    vectors, labels = clustered_vectors(n + n_queries, seed=seed)
    rng = np.random.default_rng(seed + 1)
    held = np.zeros(n + n_queries, dtype=bool)
    held[rng.choice(n + n_queries, n_queries, replace=False)] = True
    queries, data, data_labels = vectors[held], vectors[~held], labels[~held]
    docs = documents_by_cluster(data_labels, ROWS_PER_DOC, rng)
    order = np.concatenate(docs)
    doc_of_row = np.repeat(np.arange(len(docs)), [len(d) for d in docs]).astype(np.int64)
    masks = {tag: rng.random(n) < share for tag, share in TAG_SHARES.items()}
    team_docs = rng.random(len(docs)) < TEAM_SHARE
    masks["team"] = team_docs[doc_of_row]
    row_tags = [[t for t in ("rare", "tiny", "team") if masks[t][i]] for i in range(n)]
    model = TextModel(n_topics=200, seed=seed + 2)
    texts = [model.chunk_text(int(data_labels[order[i]]) % 200) for i in range(n)]
    rows = ChunkSet(
        vectors=np.ascontiguousarray(data[order]),
        texts=texts,
        doc_of_row=doc_of_row,
        row_tags=row_tags,
        n_docs=len(docs),
    )
    return Dataset(n=n, rows=rows, queries=queries, masks=masks)


def select_sql(record: IndexRecord) -> str:
    # The statement vector_search sends (ragapi.store.search), for EXPLAIN and the bare run.
    return (
        "SELECT id, document_id, source, heading, text, token_count, embedding <=> $1 AS dist "
        f"FROM {quote_ident(record.table)} WHERE active AND tenant = $3 "
        "ORDER BY embedding <=> $1 LIMIT $2"
    )


@dataclass(frozen=True)
class Run:
    latency: Latency
    recall: float
    lost: float  # share of queries with recall below LOST
    full: float  # share of queries that got every row that exists (k, or all matches)
    strategies: dict[str, int]
    ef_used: dict[int, int]


def score(found: list[list[int]], truth: npt.NDArray[np.int64]) -> tuple[float, float, float]:
    recalls = recall_at_k(found, truth)
    want = [min(K, int((t >= 0).sum())) for t in truth]
    full = float(np.mean([len(f) >= w for f, w in zip(found, want, strict=True)]))
    return float(np.mean(recalls)), float(np.mean([r < LOST for r in recalls])), full


async def load_table(
    bench: Bench,
    conn: asyncpg.Connection,
    name: str,
    rows: ChunkSet,
    spec: RagIndexSpec,
    *,
    plain: bool,
) -> tuple[IndexRecord, float]:
    """Create the index table, binary-COPY the rows, settle it and build HNSW."""
    record = await ensure_index(conn, name, spec)
    if plain:
        # Experiment only: keep the vector in the heap tuple (text and tsvector go to TOAST).
        await conn.execute(
            f"ALTER TABLE {quote_ident(record.table)} ALTER COLUMN embedding SET STORAGE PLAIN"
        )
    await insert_documents(conn, name, TENANT, rows)
    copy_s = await copy_chunks(conn, record, rows, TENANT)
    # A settled table, as autovacuum leaves it: planner statistics, visibility map and
    # hint bits set now rather than by a background worker during the timed queries.
    await conn.execute(f"VACUUM ANALYZE documents, {quote_ident(record.table)}")
    record = await build_hnsw(conn, name)
    await bench.checkpoint()  # flush the load's dirty pages before timing
    return record, copy_s


class Sizer:
    """Measures one table; ``conn`` is a plain connection with pgvector's codec."""

    def __init__(
        self, conn: asyncpg.Connection, record: IndexRecord, rows: ChunkSet, iterative: bool
    ) -> None:
        self.conn, self.record, self.rows, self.iterative = conn, record, rows, iterative

    async def _search(self, q: list[float], ef: int, filters: SearchFilters) -> VectorResult:
        # What the retriever's tenant_tx does: a read-only transaction scoped to the tenant.
        async with self.conn.transaction(readonly=True):
            await set_tenant(self.conn, TENANT)
            return await vector_search(
                self.conn,
                self.record,
                TENANT,
                q,
                k=K,
                ef_search=ef,
                filters=filters,
                iterative=self.iterative,
            )

    async def store_search(
        self, ef: int, tags: list[str], queries: Vectors, truth: npt.NDArray[np.int64]
    ) -> Run:
        filters = SearchFilters(tags=tags)
        # Lists, as the embedder hands them to the retriever (converted before timing).
        vectors: list[list[float]] = queries.tolist()
        for q in vectors[:WARMUP]:  # touch the index and heap pages first
            await self._search(q, ef, filters)
        seconds, found = [], []
        strategies: collections.Counter[str] = collections.Counter()
        efs: collections.Counter[int] = collections.Counter()
        for q in vectors:
            started = time.perf_counter()
            res = await self._search(q, ef, filters)
            seconds.append(time.perf_counter() - started)
            found.append([c.chunk_id - self.rows.first_id for c in res.candidates])
            strategies[res.strategy] += 1
            efs[res.ef_search] += 1
        recall, lost, full = score(found, truth)
        return Run(Latency.of(seconds), recall, lost, full, dict(strategies), dict(efs))

    async def bare_select(self, ef: int, queries: Vectors) -> Latency:
        sql = select_sql(self.record)
        await self.conn.execute(f"SET hnsw.ef_search = {int(ef)}")
        await self.conn.execute("SELECT set_config('ragline.tenant', $1, false)", TENANT)
        try:
            for q in queries[:WARMUP]:
                await self.conn.fetch(sql, q, K, TENANT)
            seconds = []
            for q in queries:
                started = time.perf_counter()
                await self.conn.fetch(sql, q, K, TENANT)
                seconds.append(time.perf_counter() - started)
        finally:
            await self.conn.execute("RESET hnsw.ef_search")
            await self.conn.execute("RESET ragline.tenant")
        return Latency.of(seconds)

    async def exact(self, queries: Vectors, truth: npt.NDArray[np.int64]) -> Run:
        """The store's exact scan (plain index scans off), unfiltered, in a transaction."""
        sql = select_sql(self.record)

        async def once(q: Vectors) -> list[asyncpg.Record]:
            async with self.conn.transaction(readonly=True):
                await set_tenant(self.conn, TENANT)
                await self.conn.execute("SET LOCAL enable_indexscan = off")
                rows: list[asyncpg.Record] = await self.conn.fetch(sql, q, K, TENANT)
                return rows

        for q in queries[:5]:
            await once(q)
        seconds, found = [], []
        for q in queries:
            started = time.perf_counter()
            rows = await once(q)
            seconds.append(time.perf_counter() - started)
            found.append([r["id"] - self.rows.first_id for r in rows])
        recall, lost, full = score(found, truth)
        return Run(Latency.of(seconds), recall, lost, full, {"exact": len(queries)}, {})

    async def explain(
        self, label: str, q: Vectors, settings: list[str], tags: list[str] | None = None
    ) -> dict[str, Any]:
        sql = select_sql(self.record)
        args: list[Any] = [q, K, TENANT]
        if tags:
            sql = sql.replace("AND tenant = $3", "AND tenant = $3 AND tags @> $4::text[]")
            args.append(tags)
        async with self.conn.transaction(readonly=True):
            await set_tenant(self.conn, TENANT)
            for s in settings:
                await self.conn.execute(s)
            raw = await self.conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
        doc = raw if isinstance(raw, list) else json.loads(raw)
        top = doc[0]
        plan = top["Plan"]
        return {
            "label": label,
            "settings": settings,
            "shape": plan_shape(plan),
            "execution_ms": top.get("Execution Time"),
            "jit_ms": (top.get("JIT") or {}).get("Timing", {}).get("Total"),
            "shared_hit": plan.get("Shared Hit Blocks"),
            "shared_read": plan.get("Shared Read Blocks"),
            "plan": doc,
        }


def plan_shape(plan: dict[str, Any]) -> str:
    node = str(plan["Node Type"])
    if plan.get("Index Name"):
        node += f" {plan['Index Name']}"
    if plan.get("Workers Launched"):
        node += f" ×{plan['Workers Launched']} workers"
    kids = plan.get("Plans") or []
    return node + ("" if not kids else " > " + " | ".join(plan_shape(k) for k in kids))


async def measure_size(
    bench: Bench, n: int, n_queries: int, n_filtered: int, n_exact: int, experiments: bool
) -> dict[str, Any]:
    name = f"bench-r{n // 1000}k"
    bench.step(f"retrieval {n:,}: generating clustered vectors, chunk texts and tags")
    started = time.perf_counter()
    ds = make_dataset(n, n_queries, seed=n)
    gen_s = time.perf_counter() - started
    # Move the dataset's millions of objects out of the collector's reach: a full
    # collection over them would stall this client for milliseconds mid-measurement.
    gc.collect()
    gc.freeze()
    owner = await connect(bench.dsn)  # loads and rebuilds: DDL is the owner's
    app = await connect(bench.app_dsn)  # measures: the API's role, under row-level security
    iterative = await has_iterative_scan(app)
    out: dict[str, Any] = {
        "rows": n,
        "clusters": n_clusters(n + n_queries),
        "queries": n_queries,
        "filtered_queries": n_filtered,
    }
    try:
        bench.step(f"retrieval {n:,}: binary COPY, VACUUM ANALYZE, build_hnsw (m 16, efC 64)")
        spec = index_spec(name, FIRST_BUILD_EF_CONSTRUCTION)
        record, copy_s = await load_table(bench, owner, name, ds.rows, spec, plain=False)
        sizer = Sizer(app, record, ds.rows, iterative)
        truth = exact_topk(ds.rows.vectors, ds.queries, K)
        out.update(
            generate_seconds=gen_s,
            copy_seconds=copy_s,
            hnsw_build_seconds=record.hnsw_build_seconds,
            bytes=await table_sizes(owner, name),
        )
        unfiltered: dict[int, dict[str, Any]] = {}
        for ef in EF_VALUES:
            bench.step(f"retrieval {n:,}: {n_queries} queries at ef_search {ef}")
            run = await sizer.store_search(ef, [], ds.queries, truth)
            unfiltered[ef] = {"store": run, "select": await sizer.bare_select(ef, ds.queries)}
        out["unfiltered"] = unfiltered
        bench.step(f"retrieval {n:,}: exact scan, {n_exact} queries")
        out["exact"] = await sizer.exact(ds.queries[:n_exact], truth[:n_exact])
        out["filtered"] = await filtered_runs(bench, sizer, ds, n_filtered)
        bench.step(
            f"retrieval {n:,}: the same as the owner role, which bypasses row-level security"
        )
        bypass = Sizer(owner, record, ds.rows, iterative)
        out["owner_role"] = {
            "hnsw_ef40": await bypass.store_search(40, [], ds.queries, truth),
            "filtered": await filtered_runs(bench, bypass, ds, n_filtered),
        }
        q = ds.queries[0]
        tag = ["tiny"]
        out["plans"] = [
            await sizer.explain("hnsw ef 40", q, ["SET LOCAL hnsw.ef_search = 40"]),
            await sizer.explain("exact (indexscan off)", q, ["SET LOCAL enable_indexscan = off"]),
            await sizer.explain("tag rare, ef 40", q, ["SET LOCAL hnsw.ef_search = 40"], ["rare"]),
            await sizer.explain("tag tiny, exact", q, ["SET LOCAL enable_indexscan = off"], tag),
            await bypass.explain(
                "tag tiny, exact, owner role", q, ["SET LOCAL enable_indexscan = off"], tag
            ),
        ]
        if experiments:
            out["storage_plain"] = await storage_experiment(
                bench, owner, app, ds, n_filtered, n_exact, iterative
            )
            out["builds"] = await build_experiment(bench, owner, name, spec, sizer, ds, truth)
    finally:
        await app.close()
        await owner.close()
        gc.unfreeze()
    return out


async def filtered_runs(bench: Bench, sizer: Sizer, ds: Dataset, n_queries: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    queries = ds.queries[:n_queries]
    for tag, mask in ds.masks.items():
        bench.step(f"retrieval {ds.n:,}: filtered by tag {tag!r} ({int(mask.sum()):,} rows)")
        tag_truth = exact_topk(ds.rows.vectors, queries, K, mask)
        run = await sizer.store_search(FILTER_EF, [tag], queries, tag_truth)
        out[tag] = {"matching_rows": int(mask.sum()), "run": run}
    return out


async def storage_experiment(
    bench: Bench,
    owner: asyncpg.Connection,
    app: asyncpg.Connection,
    ds: Dataset,
    n_filtered: int,
    n_exact: int,
    iterative: bool,
) -> dict[str, Any]:
    """The same rows in a table whose vectors stay in the heap (``STORAGE PLAIN``).

    pgvector declares ``vector`` with storage EXTERNAL; a 384-d vector is 1,540 bytes,
    so with a chunk's text and tsvector the row passes the 2 kB TOAST threshold and the
    vector is moved out of line: every exact scan then reads it back through TOAST.
    """
    name = f"bench-r{ds.n // 1000}k-plain"
    bench.step(f"retrieval {ds.n:,}: experiment, same rows with embedding STORAGE PLAIN")
    rows = dataclasses.replace(ds.rows, doc_ids=[uuid.uuid4() for _ in ds.rows.doc_ids])
    record, copy_s = await load_table(
        bench, owner, name, rows, index_spec(name, FIRST_BUILD_EF_CONSTRUCTION), plain=True
    )
    sizer = Sizer(app, record, rows, iterative)
    truth = exact_topk(rows.vectors, ds.queries, K)
    plain_ds = dataclasses.replace(ds, rows=rows)
    return {
        "copy_seconds": copy_s,
        "hnsw_build_seconds": record.hnsw_build_seconds,
        "bytes": await table_sizes(owner, name),
        "exact": await sizer.exact(ds.queries[:n_exact], truth[:n_exact]),
        "hnsw_ef40": await sizer.store_search(40, [], ds.queries, truth),
        "filtered": await filtered_runs(bench, sizer, plain_ds, n_filtered),
    }


async def build_experiment(
    bench: Bench,
    conn: asyncpg.Connection,
    name: str,
    spec: RagIndexSpec,
    sizer: Sizer,
    ds: Dataset,
    truth: npt.NDArray[np.int64],
) -> list[dict[str, Any]]:
    """Rebuild with other HNSW parameters the way an operator would: a new spec through
    ``ensure_index``, then ``build_hnsw`` builds beside the old index and swaps."""
    out = []
    for m, efc in EXPERIMENT_BUILDS:
        bench.step(f"retrieval {ds.n:,}: experiment, rebuild HNSW with m {m}, efConstruction {efc}")
        hnsw = spec.hnsw.model_copy(update={"m": m, "ef_construction": efc})
        await ensure_index(conn, name, spec.model_copy(update={"hnsw": hnsw}))
        sizer.record = await build_hnsw(conn, name)
        await bench.checkpoint()
        runs = {ef: await sizer.store_search(ef, [], ds.queries, truth) for ef in EXPERIMENT_EF}
        out.append(
            {
                "m": m,
                "ef_construction": efc,
                "hnsw_build_seconds": sizer.record.hnsw_build_seconds,
                "index_bytes": (await table_sizes(conn, name))["indexes"],
                "runs": runs,
            }
        )
    return out


def calibration(bench: Bench, sizes: list[int]) -> dict[str, dict[str, float]]:
    """Real MiniLM embeddings of real prose beside equally many synthetic points."""
    paragraphs = real_paragraphs(1000)
    out: dict[str, dict[str, float]] = {}
    if len(paragraphs) >= 200:
        bench.step(f"calibration: embedding {len(paragraphs)} real paragraphs with MiniLM")
        real = bench.embedder().embed_array(paragraphs)
        out[f"MiniLM, {len(paragraphs)} real paragraphs"] = neighbour_profile(real)
    m = len(paragraphs) if len(paragraphs) >= 200 else 1000
    for n in sizes:
        vectors, _ = clustered_vectors(n, seed=n)
        pick = np.random.default_rng(0).choice(n, m, replace=False)
        label = f"synthetic {n // 1000}k, {n_clusters(n)} clusters ({m} sampled)"
        out[label] = neighbour_profile(vectors[pick])
    uniform = np.random.default_rng(0).standard_normal((m, 384)).astype(np.float32)
    out[f"uniform random ({m})"] = neighbour_profile(uniform)
    return out


async def server_info(bench: Bench) -> dict[str, Any]:
    conn = await connect(bench.dsn)
    try:
        return {
            "postgres": await conn.fetchval("SHOW server_version"),
            "pgvector": await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ),
            "shared_buffers": await conn.fetchval("SHOW shared_buffers"),
            "jit": await conn.fetchval("SHOW jit"),
        }
    finally:
        await conn.close()


def run(bench: Bench) -> dict[str, Any]:
    sizes = [10_000] if bench.quick else [10_000, 100_000]
    n_queries = 200 if bench.quick else 500
    n_filtered = 200 if bench.quick else 300
    n_exact = 100 if bench.quick else 200
    calib = calibration(bench, sizes)
    results = {
        str(n): bench.run(
            measure_size(bench, n, n_queries, n_filtered, n_exact, experiments=n == sizes[-1])
        )
        for n in sizes
    }
    data: dict[str, Any] = {"k": K, "calibration": calib, "sizes": results}
    data["goal"] = goal(results[str(sizes[-1])])
    env = environment(bench.run(server_info(bench)))
    report(bench, data)
    path = save(bench, "retrieval", data, env)
    bench.console.print(f"[dim]wrote {path}[/dim]")
    return data


def goal(size: dict[str, Any]) -> dict[str, Any]:
    """The smallest ef_search meeting both goals with the first build (m 16, efC 64; the
    shipped default is one of the rebuilds); failing that, the run with the best recall,
    to show what is missing."""
    runs: list[tuple[int, Run]] = [(ef, r["store"]) for ef, r in size["unfiltered"].items()]
    met = [
        (ef, run)
        for ef, run in runs
        if run.recall >= GOAL_RECALL and run.latency.p99 <= GOAL_P99_MS
    ]
    ef, run = met[0] if met else max(runs, key=lambda er: er[1].recall)
    out: dict[str, Any] = {
        "rows": size["rows"],
        "ef_search": ef,
        "recall": run.recall,
        "p99_ms": run.latency.p99,
        "met": bool(met),
    }
    # Each experimental rebuild: the smallest ef_search meeting both goals, if any.
    out["rebuilds"] = [
        {
            "m": b["m"],
            "ef_construction": b["ef_construction"],
            "met_at_ef": next(
                (
                    e
                    for e, r in b["runs"].items()
                    if r.recall >= GOAL_RECALL and r.latency.p99 <= GOAL_P99_MS
                ),
                None,
            ),
        }
        for b in size.get("builds", [])
    ]
    return out


# ------------------------------------------------------------------ tables


def report(bench: Bench, data: dict[str, Any]) -> None:
    c = bench.console
    cal = data["calibration"]
    keys = list(next(iter(cal.values())).keys())
    c.print(
        table(
            "Retrieval · vector shape: synthetic clusters vs real MiniLM embeddings",
            ["statistic", *cal],
            [[k, *(f"{v[k]:.3g}" for v in cal.values())] for k in keys],
            caption="Equal point counts per column; neighbour cosines and local dimension depend "
            "on density, so the 100k sample (more topics, same count) is sparser.",
        )
    )
    rows = []
    for n, s in data["sizes"].items():
        b = s["bytes"]
        rows.append(
            [
                f"{int(n):,}",
                str(s["clusters"]),
                f"{s['copy_seconds']:.2f} s ({int(n) / s['copy_seconds']:,.0f}/s)",
                f"{s['hnsw_build_seconds']:.1f} s",
                f"{b['heap'] / 2**20:.0f} MB",
                f"{b['toast'] / 2**20:.0f} MB",
                f"{b['indexes'] / 2**20:.0f} MB",
            ]
        )
    c.print(
        table(
            "Retrieval · load and HNSW build (m 16, efConstruction 64)",
            ["rows", "clusters", "binary COPY", "HNSW build", "heap", "TOAST", "all indexes"],
            rows,
            caption="COPY time includes the generated tsvector, GIN and btree indexes.",
        )
    )
    for n, s in data["sizes"].items():
        report_size(bench, int(n), s, data["k"])
    g = data["goal"]
    what = "smallest ef_search meeting both" if g["met"] else "best recall"
    c.print(
        f"Goal at {g['rows']:,} chunks (recall@10 ≥ {GOAL_RECALL}, txn p99 ≤ {GOAL_P99_MS} ms) "
        f"with the first build m 16, efC 64 (the default, efC 256, is rebuilt below): "
        f"{verdict(g['met'])} — {what}: ef_search "
        f"{g['ef_search']}, recall {g['recall']:.4f}, txn p99 {g['p99_ms']:.2f} ms"
    )
    for b in g["rebuilds"]:
        ef = b["met_at_ef"]
        found = f"at ef_search {ef}" if ef else f"at no ef_search of {EXPERIMENT_EF}"
        c.print(
            f"  rebuilt with m {b['m']}, efC {b['ef_construction']}: "
            f"{verdict(ef is not None)} {found}"
        )


def report_size(bench: Bench, n: int, s: dict[str, Any], k: int) -> None:
    c = bench.console
    ex: Run = s["exact"]
    rows = []
    for ef, r in s["unfiltered"].items():
        run: Run = r["store"]
        bare: Latency = r["select"]
        rows.append(
            [
                f"HNSW ef {ef}",
                f"{run.recall:.4f}",
                f"{run.lost:.1%}",
                ms(run.latency.p50),
                ms(run.latency.p99),
                ms(bare.p50),
                ms(bare.p99),
                f"{run.latency.p50 / ex.latency.p50:.4f}",
                verdict(run.recall >= GOAL_RECALL and run.latency.p99 <= GOAL_P99_MS),
            ]
        )
    rows.append(
        [
            "exact scan",
            f"{ex.recall:.4f}",
            f"{ex.lost:.1%}",
            ms(ex.latency.p50),
            ms(ex.latency.p99),
            "",
            "",
            "1",
            "",
        ]
    )
    c.print(
        table(
            f"Retrieval · {n:,} chunks × 384 d, top {k}, {s['queries']} held-out queries "
            f"(exact scan: {ex.latency.n})",
            [
                "search",
                "recall@10",
                "lost",
                "txn p50 ms",
                "txn p99 ms",
                "SELECT p50",
                "SELECT p99",
                "HNSW/exact p50",
                "goal",
            ],
            rows,
            caption="txn = vector_search in a read-only transaction, as the retriever runs it; "
            "SELECT = the statement alone. lost = queries with recall < 0.5. "
            f"Goal: recall ≥ {GOAL_RECALL} with txn p99 ≤ {GOAL_P99_MS} ms.",
        )
    )
    c.print(filtered_table(f"Retrieval · filtered by tag, {n:,} chunks", n, s["filtered"], k))
    c.print(
        table(
            f"Retrieval · query plans, {n:,} chunks (EXPLAIN ANALYZE, one query)",
            ["query", "plan", "exec ms", "buffers hit/read"],
            [
                [
                    p["label"],
                    p["shape"],
                    ms(p["execution_ms"] or float("nan")),
                    f"{p['shared_hit']}/{p['shared_read']}",
                ]
                for p in s["plans"]
            ],
        )
    )
    report_rls(bench, n, s)
    if "storage_plain" in s:
        report_storage(bench, n, s, k)
    if "builds" in s:
        report_builds(bench, n, s)


def filtered_table(title: str, n: int, filtered: dict[str, Any], k: int) -> Any:
    rows = []
    for tag, f in filtered.items():
        run: Run = f["run"]
        rows.append(
            [
                tag,
                f"{f['matching_rows']:,} ({f['matching_rows'] / n:.1%})",
                ", ".join(f"{s} {v}" for s, v in sorted(run.strategies.items())),
                ", ".join(f"{e}:{v}" for e, v in sorted(run.ef_used.items())),
                f"{run.full:.1%}",
                f"{run.recall:.4f}",
                ms(run.latency.p50),
                ms(run.latency.p99),
            ]
        )
    return table(
        f"{title} (ef_search {FILTER_EF}, top {k})",
        ["tag", "matching rows", "strategy: queries", "ef: queries", "full", "recall@10", *LAT],
        rows,
        caption="rare, tiny: random rows; team: 10% of documents, so topic-correlated. "
        "Recall against exact filtered search in numpy; full = got min(k, matches) rows.",
    )


def report_rls(bench: Bench, n: int, s: dict[str, Any]) -> None:
    o = s["owner_role"]
    pairs: list[tuple[str, Run, Run]] = [
        ("HNSW ef 40, no filter", s["unfiltered"][40]["store"], o["hnsw_ef40"])
    ]
    pairs += [(f"tag {t}", f["run"], o["filtered"][t]["run"]) for t, f in s["filtered"].items()]
    rows = [
        [
            label,
            f"{ms(app.latency.p50)} / {ms(app.latency.p99)}",
            f"{ms(own.latency.p50)} / {ms(own.latency.p99)}",
            ratio(app.latency.p50, own.latency.p50, 1),
            f"{app.recall:.4f} / {own.recall:.4f}",
        ]
        for label, app, own in pairs
    ]
    bench.console.print(
        table(
            f"Retrieval · row-level security, {n:,} chunks: the API's role vs the owner's",
            ["query (vector_search)", "API p50 / p99", "owner p50 / p99", "ratio", "recall"],
            rows,
            caption="ragline_app is under the tenant policy; ragline_owner has BYPASSRLS. "
            "Under RLS, quals with non-leakproof operators (tags @>, tsv @@) cannot be index "
            "conditions, so the GIN indexes go unused (see the plans).",
        )
    )


def report_storage(bench: Bench, n: int, s: dict[str, Any], k: int) -> None:
    p = s["storage_plain"]
    ef40: Run = s["unfiltered"][40]["store"]

    def row(label: str, b: dict[str, int], exact: Run, hnsw: Run, f: dict[str, Any]) -> list[str]:
        return [
            label,
            f"{b['heap'] / 2**20:.0f} / {b['toast'] / 2**20:.0f} MB",
            f"{ms(exact.latency.p50)} / {ms(exact.latency.p99)}",
            f"{ms(hnsw.latency.p50)} / {ms(hnsw.latency.p99)}",
            *(f"{ms(f[t]['run'].latency.p50)} / {ms(f[t]['run'].latency.p99)}" for t in f),
        ]

    tags = list(s["filtered"])
    bench.console.print(
        table(
            f"Retrieval · experiment: where the vector is stored, {n:,} chunks (p50 / p99 ms)",
            ["embedding storage", "heap / TOAST", "exact scan", "HNSW ef 40"]
            + [f"tag {t}" for t in tags],
            [
                row("EXTERNAL (pgvector default)", s["bytes"], s["exact"], ef40, s["filtered"]),
                row(
                    "PLAIN (kept in the heap)",
                    p["bytes"],
                    p["exact"],
                    p["hnsw_ef40"],
                    p["filtered"],
                ),
            ],
            caption="Same rows, same queries; PLAIN set by ALTER TABLE in this benchmark only. "
            f"Exact-scan speed-up: {ratio(s['exact'].latency.p50, p['exact'].latency.p50, 1)}.",
        )
    )


def report_builds(bench: Bench, n: int, s: dict[str, Any]) -> None:
    rows = []
    base = {
        "m": 16,
        "ef_construction": 64,
        "hnsw_build_seconds": s["hnsw_build_seconds"],
        "index_bytes": None,
        "runs": {ef: s["unfiltered"][ef]["store"] for ef in EXPERIMENT_EF},
    }
    for b in [base, *s["builds"]]:
        for ef, run in b["runs"].items():
            rows.append(
                [
                    f"m {b['m']}, efC {b['ef_construction']}",
                    f"{b['hnsw_build_seconds']:.1f} s",
                    str(ef),
                    f"{run.recall:.4f}",
                    f"{run.lost:.1%}",
                    ms(run.latency.p50),
                    ms(run.latency.p99),
                    verdict(run.recall >= GOAL_RECALL and run.latency.p99 <= GOAL_P99_MS),
                ]
            )
    bench.console.print(
        table(
            f"Retrieval · experiment: HNSW build parameters, {n:,} chunks (rebuilt via build_hnsw)",
            [
                "build",
                "build time",
                "ef_search",
                "recall@10",
                "lost",
                "txn p50 ms",
                "txn p99 ms",
                "goal",
            ],
            rows,
            caption="lost = queries whose search stayed in the wrong topic (recall < 0.5): "
            "with efConstruction below a topic's size, layer-0 links rarely leave the topic.",
        )
    )
