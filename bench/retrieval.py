"""Part 1: retrieval SQL at 10k and 100k chunks — HNSW recall and latency vs exact search.

Vectors are clustered like text embeddings (:mod:`bench.data`), loaded with binary COPY
into a real index table made by ``ensure_index``, indexed by ``build_hnsw``. Queries are
held-out points of the same distribution. Latency is that of ``vector_search`` inside a
read-only transaction, exactly as the retriever calls it (BEGIN, SET LOCAL, SELECT,
COMMIT: four round trips), and, for comparison, of the bare SELECT alone. Recall@10 is
against brute-force cosine in numpy over the very same float32 vectors.
"""

from __future__ import annotations

import collections
import json
import time
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
    ClusterShape,
    TextModel,
    clustered_vectors,
    documents_by_cluster,
    exact_topk,
    n_clusters,
    neighbour_profile,
    real_paragraphs,
    recall_at_k,
)
from ragapi.store.indexes import IndexRecord, build_hnsw, ensure_index, quote_ident
from ragapi.store.search import SearchFilters, has_iterative_scan, vector_search

K = 10
EF_VALUES = (10, 20, 40, 80, 160)
FILTER_EF = 40  # the contract's default efSearch
ROWS_PER_DOC = 20
TAG_SHARES = {"rare": 0.10, "tiny": 0.01}  # fraction of rows, tagged at random
TEAM_SHARE = 0.10  # fraction of documents (so topic-correlated rows)
GOAL_RECALL = 0.98
GOAL_P99_MS = 2.0
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
    recall_min: float
    full: float
    strategies: dict[str, int]
    ef_used: dict[int, int]


class Sizer:
    """Measures one table size; ``conn`` is a plain connection with pgvector's codec."""

    def __init__(self, conn: asyncpg.Connection, record: IndexRecord, ds: Dataset) -> None:
        self.conn, self.record, self.ds = conn, record, ds
        self.iterative = False

    async def store_search(self, ef: int, tags: list[str], queries: Vectors, truth: Any) -> Run:
        filters = SearchFilters(tags=tags)
        for q in queries[:WARMUP]:  # touch the index and heap pages first
            async with self.conn.transaction(readonly=True):
                await vector_search(
                    self.conn,
                    self.record,
                    TENANT,
                    q,
                    k=K,
                    ef_search=ef,
                    filters=filters,
                    iterative=self.iterative,
                )
        seconds, found = [], []
        strategies: collections.Counter[str] = collections.Counter()
        efs: collections.Counter[int] = collections.Counter()
        for q in queries:
            started = time.perf_counter()
            async with self.conn.transaction(readonly=True):
                res = await vector_search(
                    self.conn,
                    self.record,
                    TENANT,
                    q,
                    k=K,
                    ef_search=ef,
                    filters=filters,
                    iterative=self.iterative,
                )
            seconds.append(time.perf_counter() - started)
            found.append([c.chunk_id - self.ds.rows.first_id for c in res.candidates])
            strategies[res.strategy] += 1
            efs[res.ef_search] += 1
        recalls = recall_at_k(found, truth)
        want = [min(K, int((t >= 0).sum())) for t in truth]
        return Run(
            latency=Latency.of(seconds),
            recall=float(np.mean(recalls)),
            recall_min=float(np.min(recalls)),
            full=float(np.mean([len(f) >= w for f, w in zip(found, want, strict=True)])),
            strategies=dict(strategies),
            ef_used=dict(efs),
        )

    async def bare_select(self, ef: int, queries: Vectors) -> Latency:
        sql = select_sql(self.record)
        await self.conn.execute(f"SET hnsw.ef_search = {int(ef)}")
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
        return Latency.of(seconds)

    async def exact(self, queries: Vectors, truth: Any) -> Run:
        """The store's exact scan (plain index scans off), unfiltered, in a transaction."""
        sql = select_sql(self.record)

        async def once(q: Vectors) -> list[asyncpg.Record]:
            async with self.conn.transaction(readonly=True):
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
            found.append([r["id"] - self.ds.rows.first_id for r in rows])
        recalls = recall_at_k(found, truth)
        return Run(
            Latency.of(seconds),
            float(np.mean(recalls)),
            float(np.min(recalls)),
            1.0,
            {"exact": len(queries)},
            {},
        )

    async def explain(
        self, label: str, q: Vectors, settings: list[str], tags: list[str] | None = None
    ) -> dict[str, Any]:
        sql = select_sql(self.record)
        args: list[Any] = [q, K, TENANT]
        if tags:
            sql = sql.replace("AND tenant = $3", "AND tenant = $3 AND tags @> $4::text[]")
            args.append(tags)
        async with self.conn.transaction(readonly=True):
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
            "planning_ms": top.get("Planning Time"),
            "jit_ms": (top.get("JIT") or {}).get("Timing", {}).get("Total"),
            "shared_hit": plan.get("Shared Hit Blocks"),
            "shared_read": plan.get("Shared Read Blocks"),
            "rows": plan.get("Actual Rows"),
            "plan": doc,
        }


def plan_shape(plan: dict[str, Any]) -> str:
    node = plan["Node Type"]
    if plan.get("Index Name"):
        node += f" {plan['Index Name']}"
    if plan.get("Workers Launched"):
        node += f" ×{plan['Workers Launched']} workers"
    kids = plan.get("Plans") or []
    return node + ("" if not kids else " > " + " | ".join(plan_shape(k) for k in kids))


async def measure_size(bench: Bench, n: int, n_queries: int, n_exact: int) -> dict[str, Any]:
    name = f"bench-r{n // 1000}k"
    bench.step(f"retrieval {n:,}: generating {n:,} clustered vectors, texts and tags")
    started = time.perf_counter()
    ds = make_dataset(n, n_queries, seed=n)
    gen_s = time.perf_counter() - started
    conn = await connect(bench.dsn)
    try:
        record = await ensure_index(conn, name, index_spec(name))
        await insert_documents(conn, name, TENANT, ds.rows)
        bench.step(f"retrieval {n:,}: binary COPY into {record.table}")
        copy_s = await copy_chunks(conn, record, ds.rows, TENANT)
        # A settled table, as autovacuum leaves it: planner statistics, visibility map and
        # hint bits set now rather than by a background worker during the timed queries.
        await conn.execute(f"VACUUM ANALYZE {quote_ident(record.table)}")
        bench.step(f"retrieval {n:,}: build_hnsw (m 16, efConstruction 64)")
        started = time.perf_counter()
        record = await build_hnsw(conn, name)
        build_wall = time.perf_counter() - started
        await conn.execute("CHECKPOINT")  # flush the load's dirty pages before timing
        sizes = await table_sizes(conn, name)
        sizer = Sizer(conn, record, ds)
        sizer.iterative = await has_iterative_scan(conn)

        truth = exact_topk(ds.rows.vectors, ds.queries, K)
        unfiltered: dict[int, dict[str, Any]] = {}
        for ef in EF_VALUES:
            bench.step(f"retrieval {n:,}: {n_queries} queries at ef_search {ef}")
            run = await sizer.store_search(ef, [], ds.queries, truth)
            bare = await sizer.bare_select(ef, ds.queries)
            unfiltered[ef] = {"store": run, "select": bare}
        bench.step(f"retrieval {n:,}: exact scan, {n_exact} queries")
        exact = await sizer.exact(ds.queries[:n_exact], truth[:n_exact])

        filtered: dict[str, dict[str, Any]] = {}
        for tag, mask in ds.masks.items():
            bench.step(f"retrieval {n:,}: filtered by tag {tag!r} ({int(mask.sum()):,} rows)")
            tag_truth = exact_topk(ds.rows.vectors, ds.queries, K, mask)
            run = await sizer.store_search(FILTER_EF, [tag], ds.queries, tag_truth)
            filtered[tag] = {"matching_rows": int(mask.sum()), "run": run}

        q = ds.queries[0]
        plans = [
            await sizer.explain("hnsw ef 40", q, ["SET LOCAL hnsw.ef_search = 40"]),
            await sizer.explain("exact (indexscan off)", q, ["SET LOCAL enable_indexscan = off"]),
            await sizer.explain(
                "tag rare, hnsw ef 40", q, ["SET LOCAL hnsw.ef_search = 40"], ["rare"]
            ),
        ]
    finally:
        await conn.close()
    return {
        "rows": n,
        "clusters": n_clusters(n + n_queries),
        "queries": n_queries,
        "generate_seconds": gen_s,
        "copy_seconds": copy_s,
        "copy_rows_per_second": n / copy_s,
        "hnsw_build_seconds": record.hnsw_build_seconds,
        "hnsw_build_wall_seconds": build_wall,
        "bytes": sizes,
        "unfiltered": unfiltered,
        "exact": exact,
        "filtered": filtered,
        "plans": plans,
    }


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
        vectors, _ = clustered_vectors(n, seed=n, shape=ClusterShape())
        pick = np.random.default_rng(0).choice(n, m, replace=False)
        out[f"synthetic {n // 1000}k ({n_clusters(n)} clusters), {m} sampled"] = neighbour_profile(
            vectors[pick]
        )
    uniform = np.random.default_rng(0).standard_normal((m, 384)).astype(np.float32)
    out[f"uniform random (for contrast), {m}"] = neighbour_profile(uniform)
    return out


def run(bench: Bench) -> dict[str, Any]:
    sizes = [10_000] if bench.quick else [10_000, 100_000]
    n_queries = 200 if bench.quick else 500
    n_exact = 100 if bench.quick else 200
    calib = calibration(bench, sizes)
    results = {str(n): bench.run(measure_size(bench, n, n_queries, n_exact)) for n in sizes}
    data = {"k": K, "calibration": calib, "sizes": results}
    data["goal"] = goal(results[str(sizes[-1])])
    env = environment(bench.run(server_info(bench)))
    report(bench, data)
    path = save(bench, "retrieval", data, env)
    bench.console.print(f"[dim]wrote {path}[/dim]")
    return data


async def server_info(bench: Bench) -> dict[str, Any]:
    conn = await connect(bench.dsn)
    try:
        return {
            "postgres": await conn.fetchval("SHOW server_version"),
            "pgvector": await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ),
            "jit": await conn.fetchval("SHOW jit"),
            "shared_buffers": await conn.fetchval("SHOW shared_buffers"),
        }
    finally:
        await conn.close()


def goal(size: dict[str, Any]) -> dict[str, Any]:
    """The smallest ef_search reaching the recall goal, and whether its p99 fits."""
    for ef, r in size["unfiltered"].items():
        run: Run = r["store"]
        if run.recall >= GOAL_RECALL:
            return {
                "rows": size["rows"],
                "ef_search": ef,
                "recall": run.recall,
                "p99_ms": run.latency.p99,
                "met": run.latency.p99 <= GOAL_P99_MS,
            }
    return {"rows": size["rows"], "ef_search": None, "met": False}


def report(bench: Bench, data: dict[str, Any]) -> None:
    c = bench.console
    cal = data["calibration"]
    keys = list(next(iter(cal.values())).keys())
    c.print(
        table(
            "Retrieval · vector shape: synthetic clusters vs real MiniLM embeddings",
            ["point set", *keys],
            [[label, *(f"{v[k]:.3f}" for k in keys)] for label, v in cal.items()],
            caption="Same number of points in each row; nn cosines and LID depend on density.",
        )
    )
    rows = []
    for n, s in data["sizes"].items():
        b = s["bytes"]
        rows.append(
            [
                f"{int(n):,}",
                str(s["clusters"]),
                f"{s['copy_seconds']:.2f} s ({s['copy_rows_per_second']:,.0f}/s)",
                f"{s['hnsw_build_seconds']:.1f} s",
                f"{b['heap'] / 2**20:.0f} MB",
                f"{b['toast'] / 2**20:.0f} MB",
                f"{b['indexes'] / 2**20:.0f} MB",
            ]
        )
    c.print(
        table(
            "Retrieval · load and HNSW build (m 16, efConstruction 64)",
            ["rows", "clusters", "binary COPY", "HNSW build", "heap", "TOAST", "indexes"],
            rows,
            caption="COPY includes the generated tsvector and the GIN/btree indexes; build via build_hnsw.",
        )
    )
    for n, s in data["sizes"].items():
        ex: Run = s["exact"]
        rows = []
        for ef, r in s["unfiltered"].items():
            run: Run = r["store"]
            bare: Latency = r["select"]
            rows.append(
                [
                    f"HNSW ef {ef}",
                    f"{run.recall:.4f}",
                    f"{run.recall_min:.1f}",
                    ms(run.latency.p50),
                    ms(run.latency.p99),
                    ms(bare.p50),
                    ms(bare.p99),
                    ratio(run.latency.p50, ex.latency.p50, 3),
                    verdict(run.recall >= GOAL_RECALL and run.latency.p99 <= GOAL_P99_MS),
                ]
            )
        rows.append(
            [
                "exact scan",
                f"{ex.recall:.4f}",
                f"{ex.recall_min:.1f}",
                ms(ex.latency.p50),
                ms(ex.latency.p99),
                "",
                "",
                "1×",
                "",
            ]
        )
        c.print(
            table(
                f"Retrieval · {int(n):,} chunks × 384 d, top {data['k']}, {s['queries']} held-out queries "
                f"(exact: {ex.latency.n})",
                [
                    "search",
                    "recall@10",
                    "min",
                    "txn p50 ms",
                    "txn p99 ms",
                    "SELECT p50",
                    "SELECT p99",
                    "p50 vs exact",
                    "goal",
                ],
                rows,
                caption=f"txn = vector_search in a read-only transaction, as the retriever runs it; "
                f"SELECT = the bare statement. Goal: recall ≥ {GOAL_RECALL} with txn p99 ≤ {GOAL_P99_MS} ms.",
            )
        )
        rows = []
        for tag, f in s["filtered"].items():
            run = f["run"]
            rows.append(
                [
                    tag,
                    f"{f['matching_rows']:,} ({f['matching_rows'] / int(n):.1%})",
                    ", ".join(f"{k} {v}" for k, v in sorted(run.strategies.items())),
                    ", ".join(f"{k}:{v}" for k, v in sorted(run.ef_used.items())),
                    f"{run.full:.1%}",
                    f"{run.recall:.4f}",
                    ms(run.latency.p50),
                    ms(run.latency.p99),
                ]
            )
        c.print(
            table(
                f"Retrieval · filtered by tag, {int(n):,} chunks (ef_search {FILTER_EF}, top {data['k']})",
                [
                    "tag",
                    "matching rows",
                    "strategy (queries)",
                    "ef used:queries",
                    "full 10",
                    "recall@10",
                    "p50 ms",
                    "p99 ms",
                ],
                rows,
                caption="rare/tiny: random rows; team: 10% of documents, so topic-correlated. "
                "Recall against exact filtered search in numpy.",
            )
        )
        c.print(
            table(
                f"Retrieval · query plans, {int(n):,} chunks (EXPLAIN ANALYZE, one query)",
                ["query", "plan", "exec ms", "JIT ms", "buffers hit/read"],
                [
                    [
                        p["label"],
                        p["shape"],
                        ms(p["execution_ms"] or float("nan")),
                        ms(p["jit_ms"] or float("nan")),
                        f"{p['shared_hit']}/{p['shared_read']}",
                    ]
                    for p in s["plans"]
                ],
            )
        )
    g = data["goal"]
    if g.get("ef_search") is None:
        c.print(
            f"Goal at {g['rows']:,}: no ef_search reached recall@10 ≥ {GOAL_RECALL}: {verdict(False)}"
        )
    else:
        c.print(
            f"Goal at {g['rows']:,}: smallest ef_search with recall@10 ≥ {GOAL_RECALL} is {g['ef_search']} "
            f"(recall {g['recall']:.4f}), txn p99 {g['p99_ms']:.2f} ms vs ≤ {GOAL_P99_MS} ms: {verdict(g['met'])}"
        )
