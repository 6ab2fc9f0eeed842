from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragapi.chunking import Chunk, ChunkingStrategy, chunk_document
from ragapi.parsing import ParsedDocument, Section
from ragapi.tokens import load_minilm_tokenizer

TOK = load_minilm_tokenizer()

SectionSpec = tuple[tuple[str, ...], Sequence[str]]


def doc(*sections: SectionSpec) -> ParsedDocument:
    return ParsedDocument(
        content_type="text/markdown",
        title=None,
        sections=tuple(Section(tuple(h), tuple(p)) for h, p in sections),
    )


def texts(chunks: Sequence[Chunk]) -> list[str]:
    return [c.text for c in chunks]


def body(chunk: Chunk) -> str:
    return chunk.text.removeprefix(f"{chunk.heading}\n\n") if chunk.heading else chunk.text


def assert_well_formed(chunks: Sequence[Chunk], max_tokens: int) -> None:
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.token_count == TOK.count(c.text) <= max_tokens
        assert TOK.count(body(c)) > 0, "empty chunk"
        assert c.text == (f"{c.heading}\n\n{body(c)}" if c.heading else body(c))
        assert c.content_hash == hashlib.sha256(c.text.encode()).digest()
        assert len(c.content_hash) == 32


# A deterministic filler: distinct, tokenizer-friendly sentences.
WORDS = (
    "cluster operator reconciles the index while postgres keeps vectors and redis caches "
    "answers so every query returns cited passages from documents uploaded by tenants"
).split()


def sentence(seed: int, length: int = 12) -> str:
    words = [WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(length)]
    return " ".join(words).capitalize() + f" number {seed}."


def paragraph(seed: int, sentences: int) -> str:
    return " ".join(sentence(seed * 100 + i) for i in range(sentences))


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("max_tokens", "overlap"), [(15, 0), (0, 0), (16, -1), (16, 8), (100, 50), (100, 70)]
)
def test_rejects_bad_budgets(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_document(doc(((), ["text"])), max_tokens=max_tokens, overlap_tokens=overlap)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(16, 0), (16, 7), (100, 49)])
def test_accepts_edge_budgets(max_tokens: int, overlap: int) -> None:
    chunks = chunk_document(doc(((), ["text"])), max_tokens=max_tokens, overlap_tokens=overlap)
    assert texts(chunks) == ["text"]


def test_strategy_parses_from_its_value() -> None:
    assert ChunkingStrategy("structured") is ChunkingStrategy.STRUCTURED
    assert ChunkingStrategy("fixed") is ChunkingStrategy.FIXED


# --------------------------------------------------------------------------- exact results


def test_small_document_one_chunk_per_section() -> None:
    chunks = chunk_document(
        doc(
            ((), ["Hello world.", "Second paragraph here."]),
            (("Intro",), ["Alpha beta."]),
            (("Intro", "Setup"), ["Install it."]),
        ),
        max_tokens=16,
        overlap_tokens=0,
    )
    assert [(c.ordinal, c.heading, c.text, c.token_count) for c in chunks] == [
        (0, "", "Hello world.\n\nSecond paragraph here.", 7),
        (1, "Intro", "Intro\n\nAlpha beta.", 4),
        (2, "Intro > Setup", "Intro > Setup\n\nInstall it.", 6),
    ]
    assert_well_formed(chunks, 16)


def test_packs_whole_paragraphs_greedily() -> None:
    paragraphs = [f"{w} two three four." for w in ("First", "Second", "Third", "Fourth")]
    assert TOK.count(paragraphs[0]) == 5
    chunks = chunk_document(doc(((), paragraphs)), max_tokens=16, overlap_tokens=0)
    assert texts(chunks) == ["\n\n".join(paragraphs[:3]), paragraphs[3]]


def test_heading_counts_against_the_budget() -> None:
    paragraphs = [f"{w} two three four." for w in ("First", "Second", "Third", "Fourth")]
    # "Setup guide" is 2 word pieces, so only two 5-piece paragraphs fit beside it in 16.
    chunks = chunk_document(doc((("Setup guide",), paragraphs)), max_tokens=16, overlap_tokens=0)
    assert texts(chunks) == [
        "Setup guide\n\n" + "\n\n".join(paragraphs[:2]),
        "Setup guide\n\n" + "\n\n".join(paragraphs[2:]),
    ]
    assert [c.token_count for c in chunks] == [12, 12]


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    paragraphs = [f"{w} two three four." for w in ("First", "Second", "Third", "Fourth")]
    chunks = chunk_document(doc(((), paragraphs)), max_tokens=16, overlap_tokens=5)
    assert texts(chunks) == [
        "\n\n".join(paragraphs[:3]),
        "\n\n".join(paragraphs[2:]),  # "Third ..." again: 5 pieces, a paragraph start
    ]


def test_long_paragraph_splits_at_sentences_with_sentence_aligned_overlap() -> None:
    text = " ".join(f"Sentence number {n} is here." for n in ("one", "two", "three", "four"))
    chunks = chunk_document(doc(((), [text])), max_tokens=16, overlap_tokens=6)
    assert texts(chunks) == [
        "Sentence number one is here. Sentence number two is here.",
        "Sentence number two is here. Sentence number three is here.",
        "Sentence number three is here. Sentence number four is here.",
    ]


def test_long_sentence_splits_at_word_boundaries() -> None:
    words = (
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron "
        "pi rho sigma tau upsilon"
    )
    chunks = chunk_document(doc(((), [words])), max_tokens=16, overlap_tokens=4)
    assert texts(chunks) == [
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda",
        "iota kappa lambda mu nu xi omicron pi rho sigma tau",
        "rho sigma tau upsilon",
    ]


def test_word_longer_than_the_budget_is_cut_at_word_pieces() -> None:
    # Unknown letter pairs tokenize to one piece each ("zq", "##zq", ...); no word boundary.
    word = "zq" * 45
    assert TOK.count(word) > 40
    chunks = chunk_document(doc(((), [word])), max_tokens=16, overlap_tokens=3)
    assert len(chunks) >= 3
    assert_well_formed(chunks, 16)
    assert all(word.find(c.text) >= 0 for c in chunks)
    assert chunks[0].text.startswith("zq") and word.endswith(chunks[-1].text)


def test_text_before_any_heading_has_no_heading() -> None:
    (chunk,) = chunk_document(doc(((), ["Preamble."])))
    assert chunk.heading == "" and chunk.text == "Preamble."


def test_no_empty_chunks() -> None:
    chunks = chunk_document(
        doc(
            (("Empty",), []),
            (("Blank",), ["", "   ", "\n\n"]),
            (("Real",), ["", "Content.", "  "]),
            ((), []),
        )
    )
    assert texts(chunks) == ["Real\n\nContent."]
    assert chunk_document(doc()) == []
    assert chunk_document(doc(((), ["\u200b"]))) == []  # tokenizes to nothing


def test_huge_heading_is_truncated_to_a_quarter_of_the_budget() -> None:
    heading = " ".join(["word"] * 100)
    chunks = chunk_document(doc(((heading,), [paragraph(1, 5)])), max_tokens=40, overlap_tokens=10)
    assert_well_formed(chunks, 40)
    assert all(c.heading == " ".join(["word"] * 10) for c in chunks)


# --------------------------------------------------------------------------- re-ingestion


def sections_doc(bodies: Sequence[tuple[str, int]]) -> ParsedDocument:
    return doc(
        *(((name,), [paragraph(hash_seed(name), 4), paragraph(n, 15)]) for name, n in bodies)
    )


def hash_seed(name: str) -> int:
    return sum(map(ord, name))


def hashes_by_heading(chunks: Sequence[Chunk]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for c in chunks:
        out.setdefault(c.heading, []).append(c.content_hash)
    return out


def test_editing_one_section_changes_only_its_chunks() -> None:
    sections = [("Alpha", 1), ("Beta", 2), ("Gamma", 3), ("Delta", 4)]
    before = hashes_by_heading(chunk_document(sections_doc(sections)))
    assert all(len(h) >= 2 for h in before.values()), "want several chunks per section"

    edited = [("Alpha", 1), ("Beta", 22), ("Gamma", 3), ("Delta", 4)]
    after = hashes_by_heading(chunk_document(sections_doc(edited)))
    for name in ("Alpha", "Gamma", "Delta"):
        assert after[name] == before[name]
    assert not set(after["Beta"]) & set(before["Beta"])


def test_inserting_a_section_keeps_every_other_chunk() -> None:
    sections = [("Alpha", 1), ("Beta", 2), ("Gamma", 3)]
    before = chunk_document(sections_doc(sections))
    inserted = [("Alpha", 1), ("New", 9), ("Beta", 2), ("Gamma", 3)]
    after = chunk_document(sections_doc(inserted))

    old = [c.content_hash for c in before]
    kept = [c.content_hash for c in after if c.heading != "New"]
    assert kept == old  # same chunks, same order; only ordinals moved
    assert [c.ordinal for c in after] == list(range(len(after)))


def test_chunking_is_deterministic() -> None:
    d = sections_doc([("Alpha", 1), ("Beta", 2)])
    assert chunk_document(d) == chunk_document(d)


# --------------------------------------------------------------------------- text kinds


def test_cjk_text_without_spaces_splits_at_full_stops() -> None:
    sentences = [f"第{i}句话是关于向量数据库和检索增强生成的说明。" for i in range(1, 30)]
    chunks = chunk_document(doc((("说明",), ["".join(sentences)])), max_tokens=64)
    assert len(chunks) > 3
    assert_well_formed(chunks, 64)
    for c in chunks:
        assert body(c).startswith("第") and body(c).endswith("。")
    # Nothing lost: the first piece of every sentence appears somewhere.
    joined = "".join(body(c) for c in chunks)
    assert all(s in joined for s in sentences)


def test_mixed_scripts_and_emoji() -> None:
    text = "Ünïcödé naïve café 🎉. Ελληνικά κείμενα εδώ. Русский текст тоже. 日本語の文です。" * 20
    chunks = chunk_document(doc((("Ünïcode",), [text])), max_tokens=32, overlap_tokens=8)
    assert_well_formed(chunks, 32)
    assert all(body(c) in text for c in chunks)


def test_very_long_single_paragraph() -> None:
    text = paragraph(7, 2000)  # about 30k word pieces, in one paragraph
    started = time.perf_counter()
    chunks = chunk_document(doc((("Long",), [text])))
    elapsed = time.perf_counter() - started
    assert_well_formed(chunks, 200)
    pieces = TOK.count(text)
    # Overlap and sentence alignment cost some room, but chunks stay well filled.
    assert pieces / 200 < len(chunks) < pieces / 100
    assert all(body(c) in text for c in chunks)
    assert elapsed < 10


# --------------------------------------------------------------------------- FIXED


def test_fixed_windows_slide_by_max_minus_overlap() -> None:
    words = [f"w{i}" for i in range(40)]
    text = " ".join(words)
    pieces = TOK.encode(text).tokens
    assert len(pieces) == 80  # "w", "##0": two pieces per word
    chunks = chunk_document(
        doc(((), [text])), max_tokens=16, overlap_tokens=4, strategy=ChunkingStrategy.FIXED
    )
    assert_well_formed(chunks, 16)
    assert [c.heading for c in chunks] == [""] * len(chunks)
    assert texts(chunks)[:2] == [" ".join(words[:8]), " ".join(words[6:14])]
    assert chunks[-1].text.endswith("w39")


def test_fixed_ignores_structure_but_keeps_heading_text() -> None:
    d = doc(((), ["Preamble."]), (("Intro",), ["Alpha beta."]), (("Intro", "Setup"), ["Go."]))
    chunks = chunk_document(d, strategy=ChunkingStrategy.FIXED)
    assert texts(chunks) == ["Preamble.\n\nIntro\n\nAlpha beta.\n\nSetup\n\nGo."]


# --------------------------------------------------------------------------- properties

_ALPHABET = st.sampled_from(
    list("abcdefghij KLMNOP.,!?;:-'\"()0123456789\n") + list("中文字。！") + ["é", "ß", "🎉"]
)
_TEXT = st.text(_ALPHABET, max_size=300)
_ANY_TEXT = st.text(max_size=200)


@st.composite
def budgets(draw: st.DrawFn) -> tuple[int, int]:
    max_tokens = draw(st.integers(16, 80))
    overlap = draw(st.integers(0, (max_tokens - 1) // 2))
    return max_tokens, overlap


def documents(text: st.SearchStrategy[str]) -> st.SearchStrategy[ParsedDocument]:
    section = st.builds(
        Section,
        st.lists(text.map(lambda s: s[:60]), max_size=3).map(tuple),
        st.lists(text, max_size=6).map(tuple),
    )
    return st.builds(
        ParsedDocument, st.just("text/plain"), st.none(), st.lists(section, max_size=4).map(tuple)
    )


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(documents(_TEXT), budgets(), st.sampled_from(ChunkingStrategy))
def test_property_chunks_fit_the_budget(
    d: ParsedDocument, budget: tuple[int, int], strategy: ChunkingStrategy
) -> None:
    max_tokens, overlap = budget
    chunks = chunk_document(d, max_tokens=max_tokens, overlap_tokens=overlap, strategy=strategy)
    assert_well_formed(chunks, max_tokens)


@PROPERTY
@given(documents(_ANY_TEXT), budgets(), st.sampled_from(ChunkingStrategy))
def test_property_arbitrary_unicode_fits_the_budget(
    d: ParsedDocument, budget: tuple[int, int], strategy: ChunkingStrategy
) -> None:
    max_tokens, overlap = budget
    chunks = chunk_document(d, max_tokens=max_tokens, overlap_tokens=overlap, strategy=strategy)
    assert_well_formed(chunks, max_tokens)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@PROPERTY
@given(st.lists(_TEXT, max_size=8), st.integers(16, 80))
def test_property_without_overlap_nothing_is_lost_or_repeated(
    paragraphs: list[str], max_tokens: int
) -> None:
    chunks = chunk_document(doc(((), paragraphs)), max_tokens=max_tokens, overlap_tokens=0)
    assert squeeze("".join(texts(chunks))) == squeeze("".join(paragraphs))


@PROPERTY
@given(st.lists(_TEXT, min_size=1, max_size=8), budgets())
def test_property_overlapping_chunks_are_slices_of_the_section(
    paragraphs: list[str], budget: tuple[int, int]
) -> None:
    max_tokens, overlap = budget
    chunks = chunk_document(doc(((), paragraphs)), max_tokens=max_tokens, overlap_tokens=overlap)
    section = "\n\n".join(p.strip() for p in paragraphs if p.strip())
    assert all(c.text in section for c in chunks)
    if chunks:  # the first and last word pieces are always covered
        pieces = TOK.offsets(section)
        assert section[pieces[0][0] :].startswith(chunks[0].text)
        assert section[: pieces[-1][1]].endswith(chunks[-1].text)
