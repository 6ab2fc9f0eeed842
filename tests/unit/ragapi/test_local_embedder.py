from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ragapi.embedding import Embedder, LocalEmbedder
from ragapi.embedding.local import (
    DIMENSIONS,
    MAX_SEQ_LENGTH,
    MODEL_ID,
    MODEL_SHA256,
    TOKENIZER_SHA256,
    default_model_path,
)
from ragapi.tokens import MINILM_TOKENIZER_PATH, load_minilm_tokenizer
from tests.hashing_embedder import HashingEmbedder


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture(scope="module")
def small_batches() -> LocalEmbedder:
    # Several batches even for a handful of texts, to exercise sorting and reordering.
    return LocalEmbedder(batch_size=3, intra_op_num_threads=1)


def cos(a: Sequence[float], b: Sequence[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


TEXTS = [
    "A man is eating food.",
    "Kubernetes operators reconcile custom resources into running workloads, retrying "
    "until the observed state matches the desired state. " * 3,
    "",
    "short",
    "The new movie is awesome",
    "Vectors are stored in Postgres with pgvector and searched with an HNSW index.",
    "A man is riding a white horse on an enclosed ground.",
    "日本語のテキストも埋め込めます。",
]


def test_pinned_files_match() -> None:
    assert hashlib.sha256(default_model_path().read_bytes()).hexdigest() == MODEL_SHA256
    assert hashlib.sha256(MINILM_TOKENIZER_PATH.read_bytes()).hexdigest() == TOKENIZER_SHA256


def test_implements_the_protocol(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.model == MODEL_ID == "all-MiniLM-L6-v2-int8"
    assert embedder.dimensions == DIMENSIONS == 384


async def test_related_sentences_are_close_and_unrelated_far(embedder: LocalEmbedder) -> None:
    food, bread, movie = await embedder.embed(
        ["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome"]
    )
    assert cos(food, bread) > 0.5
    assert cos(food, movie) < 0.3
    assert cos(bread, movie) < 0.3


async def test_query_retrieves_the_relevant_passage(embedder: LocalEmbedder) -> None:
    passages = [
        "The cat sat on the mat and purred.",
        "To rotate TLS certificates, update the secret and restart the ingress pods.",
        "Our quarterly revenue grew by twelve percent.",
    ]
    vectors = await embedder.embed(passages)
    query = await embedder.embed_query("how do I renew the https certificate?")
    scores = [cos(query, v) for v in vectors]
    assert max(range(3), key=scores.__getitem__) == 1


async def test_vectors_are_unit_norm(embedder: LocalEmbedder) -> None:
    vectors = np.asarray(await embedder.embed(TEXTS))
    assert vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_deterministic(embedder: LocalEmbedder) -> None:
    assert await embedder.embed(TEXTS) == await embedder.embed(TEXTS)


async def test_order_survives_length_sorting_and_batch_equals_single(
    small_batches: LocalEmbedder,
) -> None:
    batched = await small_batches.embed(TEXTS)
    for text, vector in zip(TEXTS, batched, strict=True):
        (alone,) = await small_batches.embed([text])
        assert cos(vector, alone) >= 0.9999, text


async def test_batch_size_does_not_change_results(
    embedder: LocalEmbedder, small_batches: LocalEmbedder
) -> None:
    a, b = await embedder.embed(TEXTS), await small_batches.embed(TEXTS)
    assert all(cos(x, y) >= 0.9999 for x, y in zip(a, b, strict=True))


async def test_empty_input(embedder: LocalEmbedder) -> None:
    assert await embedder.embed([]) == []
    assert embedder.embed_sync([]) == []
    assert embedder.embed_array([]).shape == (0, 384)


async def test_a_bare_string_is_refused(embedder: LocalEmbedder) -> None:
    with pytest.raises(TypeError):
        await embedder.embed("not a list")


async def test_embed_query_and_sync_agree_with_embed(embedder: LocalEmbedder) -> None:
    (doc,) = await embedder.embed([TEXTS[0]])
    assert await embedder.embed_query(TEXTS[0]) == doc
    assert embedder.embed_sync([TEXTS[0]]) == [doc]


async def test_long_text_is_truncated_at_256_word_pieces(embedder: LocalEmbedder) -> None:
    tok = load_minilm_tokenizer()
    long = " ".join(f"Fact {i} concerns topic {i % 7}." for i in range(200))
    assert tok.count(long) > 3 * MAX_SEQ_LENGTH
    head = tok.truncate(long, MAX_SEQ_LENGTH - 2)  # room for [CLS] and [SEP]
    (a, b) = await embedder.embed([long, head])
    assert cos(a, b) >= 0.9999


async def test_concurrent_calls_do_not_block_the_loop(embedder: LocalEmbedder) -> None:
    texts = [f"{TEXTS[1]} {i}" for i in range(48)]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(*(embedder.embed(texts) for _ in range(3)))
    finally:
        task.cancel()
    assert results[0] == results[1] == results[2]
    assert ticks >= 5  # the loop kept running while the model did


def tampered_copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def test_a_tampered_model_is_refused(tmp_path: Path) -> None:
    bad = tampered_copy(default_model_path(), tmp_path / "model.onnx")
    actual = hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(RuntimeError) as err:
        LocalEmbedder(model_path=bad)
    message = str(err.value)
    assert str(bad) in message and MODEL_SHA256 in message and actual in message


def test_a_tampered_tokenizer_is_refused(tmp_path: Path) -> None:
    bad = tampered_copy(MINILM_TOKENIZER_PATH, tmp_path / "tokenizer.json")
    with pytest.raises(RuntimeError, match=TOKENIZER_SHA256):
        LocalEmbedder(tokenizer_path=bad)


def test_an_intact_copy_elsewhere_loads(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    shutil.copyfile(default_model_path(), model)
    assert LocalEmbedder(model_path=model).embed_sync(["ok"])[0]


def test_rejects_a_zero_batch_size() -> None:
    with pytest.raises(ValueError):
        LocalEmbedder(batch_size=0)


# --------------------------------------------------------------------------- test double


async def test_hashing_embedder_is_a_deterministic_bag_of_words() -> None:
    fake = HashingEmbedder()
    assert isinstance(fake, Embedder) and fake.dimensions == 384
    a, b, c, empty = await fake.embed(
        ["postgres stores vectors", "vectors stored in postgres", "the cat sat", ""]
    )
    assert cos(a, b) > 0.5 and abs(cos(a, c)) < 0.3
    assert all(abs(np.linalg.norm(v) - 1) < 1e-9 for v in (a, b, c, empty))
    assert await fake.embed_query("postgres stores vectors") == a
    assert HashingEmbedder(dimensions=16).vector("x") == HashingEmbedder(16).vector("x")
    assert fake.calls[0][0] == "postgres stores vectors"
