"""Answers with citations: retrieve, trim the context to the token budget, route to a
chat provider, and read back which numbered sources the answer cites."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from ragapi.contract import InferencePoolSpec
from ragapi.embedding.base import Embedder
from ragapi.prompts import build_messages, cited_hits
from ragapi.providers.base import ChatRequest, Usage
from ragapi.retrieval import Hit, trim_to_budget
from ragapi.retriever import Retriever
from ragapi.router import ChatRouter, Skipped, StreamStart
from ragapi.store.indexes import IndexRecord
from ragapi.store.search import SearchFilters


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[Hit]
    provider: str
    model: str
    usage: Usage
    skipped: list[Skipped] = field(default_factory=list)
    degraded: bool = False


@dataclass(frozen=True)
class AnswerStart:
    provider: str
    model: str
    skipped: list[Skipped]
    degraded: bool = False


@dataclass(frozen=True)
class AnswerDone:
    citations: list[Hit]
    usage: Usage
    text: str


@dataclass(frozen=True)
class AnswerContext:
    hits: list[Hit]
    request: ChatRequest


class Answerer:
    def __init__(self, retriever: Retriever, router: ChatRouter) -> None:
        self.retriever = retriever
        self.router = router

    async def context(
        self,
        record: IndexRecord,
        tenant: str,
        question: str,
        embedder: Embedder,
        *,
        top_k: int | None,
        filters: SearchFilters | None,
        history: Sequence[dict[str, str]] = (),
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AnswerContext:
        outcome = await self.retriever.search(
            record, tenant, question, embedder, top_k=top_k, filters=filters
        )
        hits = trim_to_budget(outcome.hits, record.spec.answer.max_context_tokens)
        request = ChatRequest(
            question=question,
            hits=hits,
            messages=build_messages(question, hits, history),
            max_tokens=max_tokens,
            temperature=temperature,
        )
        return AnswerContext(hits, request)

    async def answer(self, ctx: AnswerContext, pool_name: str, pool: InferencePoolSpec) -> Answer:
        routed = await self.router.complete(pool_name, pool, ctx.request)
        text = routed.completion.text
        citations = cited_hits(text, ctx.hits) if ctx.hits else []
        return Answer(
            text,
            citations,
            routed.provider,
            routed.model,
            routed.completion.usage,
            routed.skipped,
            routed.degraded,
        )

    async def stream(
        self, ctx: AnswerContext, pool_name: str, pool: InferencePoolSpec
    ) -> AsyncIterator[AnswerStart | str | AnswerDone]:
        """Start, then text deltas, then Done with the citations. A failure after the
        first delta raises ``StreamInterrupted`` for the caller to report."""
        parts: list[str] = []
        usage = Usage()
        async for item in self.router.stream(pool_name, pool, ctx.request):
            if isinstance(item, StreamStart):
                yield AnswerStart(item.provider, item.model, item.skipped, item.degraded)
            elif isinstance(item, Usage):
                usage = item
            else:
                parts.append(item)
                yield item
        text = "".join(parts)
        yield AnswerDone(cited_hits(text, ctx.hits) if ctx.hits else [], usage, text)
