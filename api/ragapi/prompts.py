"""Prompts with numbered sources, and reading the citations back out of an answer."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragapi.retrieval import Hit

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources provided. "
    "Cite every claim with the source number in square brackets, like [1] or [2][3]. "
    "If the sources do not contain the answer, say that you do not know."
)
_MARKER = re.compile(r"\[(\d{1,3})\]")


def format_sources(hits: Sequence[Hit]) -> str:
    parts = []
    for n, h in enumerate(hits, start=1):
        parts.append(f"[{n}] (source: {h.source})\n{h.text}")
    return "\n\n".join(parts)


def build_messages(
    question: str, hits: Sequence[Hit], history: Sequence[dict[str, str]] = ()
) -> list[dict[str, str]]:
    user = f"Sources:\n\n{format_sources(hits)}\n\nQuestion: {question}"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        *history,
        {"role": "user", "content": user},
    ]


def cited_hits(answer: str, hits: Sequence[Hit]) -> list[Hit]:
    """The hits the answer cites by number, in order of first citation; all hits if the
    model cited none (it still answered from them)."""
    seen: list[int] = []
    for m in _MARKER.finditer(answer):
        n = int(m.group(1))
        if 1 <= n <= len(hits) and n not in seen:
            seen.append(n)
    if not seen:
        return list(hits)
    return [hits[n - 1] for n in seen]
