"""What every part shares: the run context, latency statistics, tables, JSON, loading rows."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import platform
import subprocess
import time
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector
from rich.console import Console
from rich.table import Table

from ragapi.contract import RagIndexSpec
from ragapi.embedded import EmbeddedStack
from ragapi.routing import parse_routing
from ragapi.store.documents import COPY_COLUMNS
from ragapi.store.indexes import IndexRecord, chunk_table

if TYPE_CHECKING:
    from ragapi.embedding.local import LocalEmbedder

T = TypeVar("T")
Vectors = npt.NDArray[np.float32]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TENANT = "bench"
DIMENSIONS = 384

# The index every part benchmarks: the contract's defaults (HNSW m 16, efConstruction
# 256, efSearch 40), written as a user would. The retrieval part starts from a cheaper
# build (efConstruction 64) and rebuilds, to show what the default buys.
INDEX_YAML = """\
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: {name}}}
spec:
  chunking: {{maxTokens: 200, overlapTokens: 30, strategy: structured}}
  search: {{hybrid: true, rrfK: 60, topK: 5}}
"""
HNSW_YAML = "  hnsw: {{m: 16, efConstruction: {ef_construction}, efSearch: 40}}\n"


def index_yaml(name: str, ef_construction: int | None = None) -> str:
    hnsw = HNSW_YAML.format(ef_construction=ef_construction) if ef_construction else ""
    return INDEX_YAML.format(name=name) + hnsw


def index_spec(name: str, ef_construction: int | None = None) -> RagIndexSpec:
    """Parsed exactly as the API parses its routing file, so an API started on the same
    YAML finds the spec unchanged and reuses the HNSW index the benchmark built."""
    return parse_routing(index_yaml(name, ef_construction)).indexes[name]


# ------------------------------------------------------------------ the run context


@dataclass
class Bench:
    stack: EmbeddedStack
    runner: asyncio.Runner
    console: Console
    quick: bool
    work_dir: Path
    results_dir: Path = RESULTS_DIR
    _embedder: LocalEmbedder | None = field(default=None, repr=False)

    @property
    def dsn(self) -> str:
        """The owner's DSN: DDL, loading, inspection (it bypasses row-level security)."""
        return self.stack.postgres.url

    @property
    def app_dsn(self) -> str:
        """The API's DSN: a role under row-level security, as every request runs."""
        return self.stack.postgres.app_url

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Every part shares one event loop, so a pool made in one step serves the next."""
        return self.runner.run(coro)

    def embedder(self) -> LocalEmbedder:
        """One in-process MiniLM, with the thread count the API would pick on this host."""
        if self._embedder is None:
            from ragapi.embedding.local import LocalEmbedder

            self._embedder = LocalEmbedder()
        return self._embedder

    async def checkpoint(self) -> None:
        """Flush dirty pages now, not during the next timed loop (needs the superuser)."""
        conn = await asyncpg.connect(self.stack.postgres.superuser_url)
        try:
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()

    def step(self, message: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


async def connect(dsn: str) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(dsn, command_timeout=600)
    await register_vector(conn)
    return conn


# ------------------------------------------------------------------ statistics


@dataclass(frozen=True)
class Latency:
    """Milliseconds."""

    n: int
    p50: float
    p90: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        if not seconds:
            return cls(0, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
        return cls(len(ms), p50, p90, p99, float(ms.mean()), float(ms.max()))


def ms(value: float, digits: int = 2) -> str:
    return "—" if value != value else f"{value:.{digits}f}"  # NaN: nothing measured


def ratio(a: float, b: float, digits: int = 2) -> str:
    return "—" if not b or a != a or b != b else f"{a / b:.{digits}f}×"


def verdict(ok: bool) -> str:
    return "[green]PASS[/green]" if ok else "[red]MISS[/red]"


def table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], caption: str = ""
) -> Table:
    t = Table(title=title, caption=caption or None, title_justify="left", caption_justify="left")
    for i, col in enumerate(columns):
        t.add_column(col, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        t.add_row(*row)
    return t


# ------------------------------------------------------------------ JSON results


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None  # JSON has no NaN
    return value


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def environment(stack_info: dict[str, Any]) -> dict[str, Any]:
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        # Uncommitted changes in the data plane mean the figures are not of that commit.
        "git_dirty_paths": _git("status", "--porcelain", "--", "api").splitlines(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        # Latency figures are only as quiet as the machine: anything else running shows here.
        "loadavg_1_5_15": os.getloadavg(),
        **stack_info,
    }


def save(bench: Bench, part: str, data: dict[str, Any], env: dict[str, Any]) -> Path:
    bench.results_dir.mkdir(parents=True, exist_ok=True)
    path = bench.results_dir / f"{part}{'-quick' if bench.quick else ''}.json"
    payload = {"part": part, "quick": bench.quick, "environment": env, **data}
    path.write_text(json.dumps(_plain(payload), indent=2) + "\n")
    return path


# ------------------------------------------------------------------ loading chunk rows


@dataclass
class ChunkSet:
    """Rows for one chunk table, in the order they are written (``id`` = ``first_id + i``).

    Rows belong to documents (``doc_of_row``); a document's rows are consecutive, as the
    store writes them. ``row_tags`` are per row so a benchmark can tag a random fraction.
    """

    vectors: Vectors
    texts: list[str]
    doc_of_row: npt.NDArray[np.int64]
    row_tags: list[list[str]]
    n_docs: int
    first_id: int = 1
    doc_ids: list[uuid.UUID] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.doc_ids:
            self.doc_ids = [uuid.uuid4() for _ in range(self.n_docs)]

    def __len__(self) -> int:
        return len(self.texts)

    def records(
        self, tenant: str, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[Any, ...]]:
        """Tuples in ``COPY_COLUMNS`` order, as ``write_version`` builds them."""
        stop = len(self) if stop is None else stop
        for i in range(start, stop):
            doc = int(self.doc_of_row[i])
            text = self.texts[i]
            yield (
                self.first_id + i,
                self.doc_ids[doc],
                tenant,
                f"doc-{doc:06d}.md",
                1,
                f"Section {i % 7}",
                text,
                len(text.split()) * 4 // 3,  # about 1.3 word pieces per English word
                hashlib.sha256(text.encode()).digest(),
                self.row_tags[i],
                "{}",
                self.vectors[i],
            )


async def insert_documents(
    conn: asyncpg.Connection, index: str, tenant: str, rows: ChunkSet
) -> None:
    """The parent ``documents`` rows (chunk rows reference them)."""
    records: list[tuple[Any, ...]] = [
        (
            doc_id,
            tenant,
            index,
            f"doc-{n:06d}.md",
            1,
            "text/markdown",
            hashlib.sha256(doc_id.bytes).digest(),
            [],
            "{}",
        )
        for n, doc_id in enumerate(rows.doc_ids)
    ]
    await conn.copy_records_to_table(
        "documents",
        records=records,
        columns=(
            "id",
            "tenant",
            "index_name",
            "source",
            "version",
            "content_type",
            "content_hash",
            "tags",
            "metadata",
        ),
    )


async def reserve_ids(conn: asyncpg.Connection, rows: ChunkSet) -> None:
    """Take the rows' ids from the global ``chunk_ids`` sequence, as the store does, so
    documents ingested later into the same table never collide with them."""
    last: int = await conn.fetchval(
        "SELECT setval('chunk_ids', nextval('chunk_ids') + $1::bigint - 1)", len(rows)
    )
    rows.first_id = last - len(rows) + 1


async def copy_chunks(
    conn: asyncpg.Connection, record: IndexRecord, rows: ChunkSet, tenant: str
) -> float:
    """Binary COPY of every row, as the store writes chunks; returns seconds."""
    await reserve_ids(conn, rows)
    records = rows.records(tenant)
    started = time.perf_counter()
    await conn.copy_records_to_table(record.table, records=records, columns=COPY_COLUMNS)
    return time.perf_counter() - started


async def table_sizes(conn: asyncpg.Connection, index: str) -> dict[str, int]:
    """Heap, TOAST and index bytes: the TOAST share tells whether vectors left the heap."""
    row = await conn.fetchrow(
        """SELECT pg_relation_size(c.oid) AS heap,
                  coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast,
                  pg_indexes_size(c.oid) AS indexes
           FROM pg_class c WHERE c.relname = $1""",
        chunk_table(index),
    )
    assert row is not None
    return {k: int(row[k]) for k in ("heap", "toast", "indexes")}


class PrecomputedEmbedder:
    """An :class:`~ragapi.embedding.base.Embedder` that returns vectors computed earlier
    by the real model, so a run measures everything except the model itself."""

    def __init__(
        self, vectors: dict[str, list[float]], model: str, dimensions: int = DIMENSIONS
    ) -> None:
        self._vectors = vectors
        self.model = model
        self.dimensions = dimensions

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vectors[t] for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        return self._vectors[text]
