"""The extractive provider: answers with the best passages and their citations, no model.

It is always available (no network, no cost), so it is the router's last resort and the
offline default. It picks the sentences of the retrieved chunks that share the most
content words with the question, keeps retrieval order among them, and cites each.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from ragapi.providers.base import ChatRequest, Completion, Usage
from ragapi.retrieval import Hit

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_STOP = frozenset(
    """a an and are as at be by can do does for from how i in is it of on or that the this
    to was what when where which who why will with you your my me we our""".split()
)
NOTHING_FOUND = "I could not find anything about that in the indexed documents."


def _terms(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP and len(w) > 1}


@dataclass(frozen=True)
class Extract:
    text: str
    cited: list[Hit]


def extract_answer(question: str, hits: Sequence[Hit], *, max_sentences: int = 3) -> Extract:
    if not hits:
        return Extract(NOTHING_FOUND, [])
    q = _terms(question)
    scored: list[tuple[float, int, int, str]] = []  # (-score, hit rank, sentence pos, text)
    for rank, hit in enumerate(hits):
        body = hit.text
        if hit.heading and body.startswith(hit.heading):
            body = body[len(hit.heading) :].lstrip()
        for pos, sentence in enumerate(s.strip() for s in _SENTENCE.split(body)):
            if len(sentence) < 3:
                continue
            overlap = len(q & _terms(sentence))
            if overlap:
                # earlier-ranked chunks win ties: retrieval already judged them better
                scored.append((-(overlap - 0.01 * rank), rank, pos, sentence))
    if not scored:
        first = next((s.strip() for s in _SENTENCE.split(hits[0].text) if s.strip()), "")
        scored = [(0.0, 0, 0, first)]
    best = sorted(scored)[:max_sentences]
    best.sort(key=lambda t: (t[1], t[2]))
    cited: list[Hit] = []
    parts = []
    for _, rank, _, sentence in best:
        hit = hits[rank]
        if hit not in cited:
            cited.append(hit)
        parts.append(f"{sentence} [{rank + 1}]")  # numbered like the prompt's sources
    return Extract(" ".join(parts), cited)


class ExtractiveProvider:
    def __init__(self, name: str = "extractive") -> None:
        self.name = name
        self.model = "extractive"

    async def complete(self, request: ChatRequest) -> Completion:
        ex = extract_answer(request.question, request.hits)
        return Completion(ex.text, Usage(), cited=ex.cited)

    async def stream(self, request: ChatRequest) -> AsyncIterator[str | Usage]:
        ex = extract_answer(request.question, request.hits)
        for word in re.findall(r"\S+\s*", ex.text):
            yield word
        yield Usage()
