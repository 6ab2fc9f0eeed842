"""Synthetic but realistic data: text with English word frequencies, Markdown documents,
and 384-d vectors clustered the way MiniLM text embeddings are.

Uniform random vectors would flatter nothing and mislead everything: in 384 dimensions
they are all nearly orthogonal, so HNSW recall and latency say little about real text.
Real sentence embeddings are anisotropic (they share a common direction), grouped by
topic (and topics by subject), and locally low-dimensional: around any point the data
spreads along a few directions only. :func:`clustered_vectors` builds exactly that —
hierarchical centres, a shared mean direction, and per-cluster low-rank noise plus a
little isotropic noise — and :func:`neighbour_profile` lets the run check the result
against real MiniLM embeddings of real prose (:func:`real_paragraphs`).
"""

from __future__ import annotations

import functools
import json
import re
import site
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragapi.tokens import MINILM_TOKENIZER_PATH

Vectors = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

# In the BERT uncased vocabulary whole words start at id 1996 ("the") and follow corpus
# frequency closely, so the vocabulary doubles as a frequency-ranked English word list.
_FIRST_WORD_ID = 1996
_BACKGROUND_SHARE = 0.65  # of a chunk's words; the rest come from its topic


def unit(a: npt.NDArray[np.float64] | Vectors) -> npt.NDArray[np.float64]:
    return np.asarray(a / np.linalg.norm(a, axis=-1, keepdims=True), dtype=np.float64)


# ------------------------------------------------------------------ text


@functools.lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    vocab: dict[str, int] = json.loads(MINILM_TOKENIZER_PATH.read_text())["model"]["vocab"]
    ranked = sorted((i, w) for w, i in vocab.items() if i >= _FIRST_WORD_ID)
    return tuple(
        w for _, w in ranked if w.isascii() and w.isalpha() and (len(w) > 1 or w in ("a", "i"))
    )


class TextModel:
    """Bag-of-words topics over a Zipf background: word salad, but with the term
    statistics (stop words, common and rare terms) that full-text search and chunking see."""

    def __init__(self, n_topics: int, seed: int, topic_words: int = 60) -> None:
        self.words = np.asarray(vocabulary(), dtype=object)
        ranks = np.arange(len(self.words), dtype=np.float64)
        weights = 1.0 / (ranks + 2.7)  # Zipf-Mandelbrot, close to English word frequencies
        self.cdf = np.cumsum(weights / weights.sum())
        self.rng = np.random.default_rng(seed)
        # Topic words are content words: past the few hundred commonest, not too obscure.
        self.topics = [
            self.rng.choice(np.arange(200, 12000), size=topic_words, replace=False)
            for _ in range(n_topics)
        ]

    def _indices(self, topic: int, n: int) -> Ints:
        background = np.searchsorted(self.cdf, self.rng.random(n))
        background = np.minimum(background, len(self.words) - 1)
        topical = self.topics[topic][self.rng.integers(0, len(self.topics[topic]), n)]
        pick = self.rng.random(n) < _BACKGROUND_SHARE
        return np.where(pick, background, topical).astype(np.int64)

    def words_of(self, topic: int, n: int) -> list[str]:
        return [str(w) for w in self.words[self._indices(topic, n)]]

    def sentence(self, topic: int, lo: int = 8, hi: int = 22) -> str:
        words = self.words_of(topic, int(self.rng.integers(lo, hi + 1)))
        words[0] = words[0].capitalize()
        return " ".join(words) + "."

    def paragraph(self, topic: int, lo: int = 3, hi: int = 6) -> str:
        return " ".join(self.sentence(topic) for _ in range(int(self.rng.integers(lo, hi + 1))))

    def chunk_text(self, topic: int, lo: int = 110, hi: int = 170) -> str:
        """About a 200-word-piece chunk (the default ``maxTokens``): sentences up to length."""
        target = int(self.rng.integers(lo, hi + 1))
        idx = self._indices(topic, target)
        words = self.words[idx].tolist()
        # Full stops every 8-22 words keep the text sentence-shaped for the chunker and parser.
        cut = 0
        while cut < target - 1:
            cut += int(self.rng.integers(8, 23))
            if cut < target:
                words[cut - 1] = f"{words[cut - 1]}."
        return " ".join(words) + "."

    def title(self, topic: int) -> str:
        return " ".join(w.capitalize() for w in self.words_of(topic, int(self.rng.integers(2, 6))))

    def query(self, topic: int) -> str:
        """A short question-like query: mostly topic words, as users type them."""
        n = int(self.rng.integers(4, 10))
        topical = self.topics[topic][self.rng.integers(0, len(self.topics[topic]), n)]
        words = [str(w) for w in self.words[topical]]
        lead = ["how", "what", "why", "when", "which", "where"][int(self.rng.integers(0, 6))]
        return f"{lead} {' '.join(words)}"

    def markdown_document(self, topic: int, sections: tuple[int, int] = (4, 8)) -> str:
        """A multi-section Markdown document: headings, paragraphs, lists, code."""
        parts = [f"# {self.title(topic)}", "", self.paragraph(topic), ""]
        for _ in range(int(self.rng.integers(sections[0], sections[1] + 1))):
            parts += [f"## {self.title(topic)}", ""]
            for _ in range(int(self.rng.integers(2, 5))):
                parts += [self.paragraph(topic), ""]
            roll = self.rng.random()
            if roll < 0.3:
                parts += [
                    f"- {self.sentence(topic, 4, 10)}" for _ in range(int(self.rng.integers(3, 6)))
                ]
                parts.append("")
            elif roll < 0.45:
                name = self.words_of(topic, 1)[0]
                parts += [
                    "```python",
                    f"def {name}(x):",
                    f"    return x  # {self.sentence(topic, 3, 7)}",
                    "```",
                    "",
                ]
        return "\n".join(parts)


# ------------------------------------------------------------------ vectors


@dataclass(frozen=True)
class ClusterShape:
    """Parameters of :func:`clustered_vectors`, calibrated against MiniLM on real prose:
    similar anisotropy, pairwise cosine spread, principal-component profile, neighbour
    cosines and local intrinsic dimension (the run prints both side by side)."""

    spread: float = 0.9  # noise scale relative to the unit centre
    rank: int = 16  # local intrinsic dimension of a cluster
    isotropic: float = 0.5  # noise in every direction, relative to spread
    common: float = 0.55  # weight of the direction every embedding shares
    subtopic: float = 0.8  # distance of a cluster centre from its subject's centre
    # Variance of direction i (in a random basis) falls as (i + 1) ** -spectrum: real
    # embeddings concentrate in few principal directions (MiniLM on prose: half the
    # variance in ~26 of 384). With 0 the subjects would be mutually orthogonal islands,
    # which no text corpus has and which HNSW's greedy search cannot cross.
    spectrum: float = 0.85


def n_clusters(n: int) -> int:
    return int(np.clip(n // 100, 200, 1000))


class _Space:
    """Random directions drawn with the power-law covariance of :class:`ClusterShape`."""

    def __init__(self, rng: np.random.Generator, shape: ClusterShape, dim: int) -> None:
        self.rng = rng
        self.rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
        sd = (np.arange(dim) + 1.0) ** (-shape.spectrum / 2)
        self.sd = sd / np.sqrt(np.mean(sd**2))  # same expected norm as isotropic draws

    def draw(self, k: int) -> npt.NDArray[np.float64]:
        g = self.rng.standard_normal((k, len(self.sd))) * self.sd
        return np.asarray(g @ self.rotation.T, dtype=np.float64)


def clustered_vectors(
    n: int,
    *,
    seed: int,
    clusters: int | None = None,
    shape: ClusterShape = ClusterShape(),
    dim: int = 384,
) -> tuple[Vectors, Ints]:
    """``n`` unit vectors and their cluster labels. Cluster sizes vary (Dirichlet weights)
    and clusters group into subjects (one per 20 clusters)."""
    rng = np.random.default_rng(seed)
    space = _Space(rng, shape, dim)
    c = clusters or n_clusters(n)
    mean = unit(rng.standard_normal(dim))
    subjects = unit(space.draw(max(1, c // 20)))
    centres = unit(
        subjects[rng.integers(0, len(subjects), c)] + shape.subtopic * unit(space.draw(c))
    )
    centres = unit(centres + shape.common * mean)
    labels = rng.choice(c, size=n, p=rng.dirichlet(np.ones(c))).astype(np.int64)
    return around(centres, labels, rng, shape, dim, space), labels


def around(
    centres: npt.NDArray[np.float64],
    labels: Ints,
    rng: np.random.Generator,
    shape: ClusterShape,
    dim: int = 384,
    space: _Space | None = None,
) -> Vectors:
    """Points near their centre: a random ``rank``-dimensional subspace per cluster plus a
    little noise in every direction, then normalised (cosine data lives on the sphere).
    Without ``space`` (centres that already are real embeddings) the noise is isotropic."""
    out = np.empty((len(labels), dim), dtype=np.float32)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        directions = space.draw(shape.rank).T if space else rng.standard_normal((dim, shape.rank))
        basis = np.linalg.qr(directions)[0]
        scale = rng.uniform(0.7, 1.3) * shape.spread  # some topics are tighter than others
        z = rng.standard_normal((len(rows), shape.rank)) * scale / np.sqrt(shape.rank)
        noise = space.draw(len(rows)) if space else rng.standard_normal((len(rows), dim))
        out[rows] = unit(centres[c] + z @ basis.T + shape.isotropic * scale * noise / np.sqrt(dim))
    return out


def documents_by_cluster(labels: Ints, per_doc: int, rng: np.random.Generator) -> list[Ints]:
    """Group rows into documents of ``per_doc`` rows from one cluster (a document is about
    one topic), in random document order (documents arrive in no particular order)."""
    docs: list[Ints] = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        docs += [rows[i : i + per_doc] for i in range(0, len(rows), per_doc)]
    order = rng.permutation(len(docs))
    return [docs[i] for i in order]


# ------------------------------------------------------------------ exact search


def exact_topk(
    data: Vectors, queries: Vectors, k: int, mask: npt.NDArray[np.bool_] | None = None
) -> Ints:
    """Row indices of the k most cosine-similar rows (unit vectors: dot product), best
    first; -1 pads when fewer than k rows pass ``mask``."""
    candidates = np.arange(len(data)) if mask is None else np.flatnonzero(mask)
    pool = data[candidates]
    out = np.full((len(queries), k), -1, dtype=np.int64)
    kk = min(k, len(candidates))
    if kk == 0:
        return out
    for start in range(0, len(queries), 128):  # bounded memory: 128 × n similarities at once
        sims = queries[start : start + 128] @ pool.T
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[start : start + 128, :kk] = candidates[np.take_along_axis(part, order, axis=1)]
    return out


def recall_at_k(found: Sequence[Sequence[int]], truth: Ints) -> list[float]:
    """Per query: |found ∩ truth| / |truth| (truth shorter than k when few rows match)."""
    scores = []
    for got, want in zip(found, truth, strict=True):
        wanted = {int(i) for i in want if i >= 0}
        scores.append(len(wanted & {int(i) for i in got}) / len(wanted) if wanted else 1.0)
    return scores


# ------------------------------------------------------------------ calibration


def neighbour_profile(x: Vectors, k: int = 10) -> dict[str, float]:
    """Shape statistics of a point set: anisotropy, the spread of pairwise cosines, how
    many principal components hold half and 90% of the variance, cosine to the 1st and
    k-th neighbour, and the median local intrinsic dimension (Levina-Bickel MLE)."""
    x = unit(x).astype(np.float32)
    sims = x @ x.T
    np.fill_diagonal(sims, -2.0)
    top = -np.sort(-sims, axis=1)[:, :k]
    dist = np.sqrt(np.maximum(2.0 - 2.0 * top, 1e-12))
    lid = -1.0 / np.mean(np.log(dist[:, : k - 1] / dist[:, k - 1 : k]), axis=1)
    upper = sims[np.triu_indices(len(x), 1)]
    p1, p50, p99 = np.percentile(upper, [1, 50, 99])
    var = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2
    share = np.cumsum(var) / var.sum()
    return {
        "mean vector norm": float(np.linalg.norm(x.mean(axis=0))),
        "pair cos p1": float(p1),
        "pair cos p50": float(p50),
        "pair cos p99": float(p99),
        "PCs 50% var": float(np.searchsorted(share, 0.5) + 1),
        "PCs 90% var": float(np.searchsorted(share, 0.9) + 1),
        "nn1 cos": float(top[:, 0].mean()),
        f"nn{k} cos": float(top[:, k - 1].mean()),
        "local dim (MLE)": float(np.median(lid)),
    }


def real_paragraphs(limit: int) -> list[str]:
    """Real English prose available offline: paragraphs of the installed packages'
    descriptions (``*.dist-info/METADATA``), deduplicated, markup-heavy ones skipped."""
    found: list[str] = []
    dirs = [Path(p) for p in site.getsitepackages()] or [Path(sys.prefix)]
    for meta in sorted(f for d in dirs for f in d.glob("*.dist-info/METADATA")):
        body = meta.read_text(errors="replace").split("\n\n", 1)[-1]
        for para in re.split(r"\n\s*\n", body):
            text = " ".join(para.split())
            if len(text.split()) < 25 or text.startswith(("|", "..", "```", ">>>", "<")):
                continue
            if sum(ch.isalpha() for ch in text) / len(text) < 0.7:
                continue  # tables, code, badges
            found.append(text[:1200])
    return list(dict.fromkeys(found))[:limit]
