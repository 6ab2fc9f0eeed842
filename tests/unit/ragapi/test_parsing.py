"""Unit tests for ragapi.parsing: every fixture is built in the test, no committed binaries."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest
from pypdf import PdfReader
from pypdf.generic import Destination

from ragapi.errors import (
    EmptyDocument,
    EncryptedDocument,
    InvalidEncoding,
    UnparseableDocument,
    UnsupportedMediaType,
)
from ragapi.parsing import (
    CONTENT_TYPES,
    DOCX,
    HTML,
    MARKDOWN,
    PDF,
    PLAIN,
    ParsedDocument,
    Section,
    parse_document,
    resolve_content_type,
)
from tests.support.documents import Bookmark, encrypt_pdf, make_pdf

# --------------------------------------------------------------------------- content types


def test_content_types_are_the_five_canonical_ones() -> None:
    expected = {
        "text/plain",
        "text/markdown",
        "text/html",
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    }
    assert set(CONTENT_TYPES) == expected


@pytest.mark.parametrize(
    ("declared", "filename", "expected"),
    [
        ("text/plain", None, PLAIN),
        ("text/plain; charset=utf-8", "x.bin", PLAIN),
        ("TEXT/PLAIN", None, PLAIN),
        ("text", None, PLAIN),
        ("text/markdown", None, MARKDOWN),
        ("text/x-markdown; charset=UTF-8", None, MARKDOWN),
        ("text/md", None, MARKDOWN),
        ("markdown", None, MARKDOWN),
        ("text/html", None, HTML),
        ("application/xhtml+xml", None, HTML),
        ("html", None, HTML),
        ("application/pdf", None, PDF),
        ("pdf", None, PDF),
        (DOCX, None, DOCX),
        ("docx", None, DOCX),
        # declared type wins over the extension
        ("text/markdown", "notes.txt", MARKDOWN),
        # missing / unknown-binary declared type: fall back to the extension
        (None, "notes.txt", PLAIN),
        ("", "README.md", MARKDOWN),
        ("application/octet-stream", "guide.markdown", MARKDOWN),
        ("application/octet-stream; foo=bar", "page.HTML", HTML),
        (None, "page.htm", HTML),
        (None, "paper.PDF", PDF),
        (None, "report.final.docx", DOCX),
        (None, "C:\\Users\\me\\report.docx", DOCX),
        (None, "dir/sub/a.pdf", PDF),
    ],
)
def test_resolve_content_type(declared: str | None, filename: str | None, expected: str) -> None:
    assert resolve_content_type(declared, filename) == expected


@pytest.mark.parametrize(
    ("declared", "filename", "named"),
    [
        ("image/png", None, "'image/png'"),
        ("image/png", "photo.txt", "'image/png'"),
        ("application/msword", "old.doc", "'application/msword'"),
        ("application/json; charset=utf-8", None, "'application/json'"),
        (None, None, "no content type"),
        ("", "noextension", "'noextension'"),
        (None, ".md", "'.md'"),  # a dotfile has no extension
        ("application/octet-stream", "photo.png", "'photo.png'"),
        ("application/octet-stream", None, "'application/octet-stream'"),
    ],
)
def test_resolve_content_type_rejects_unsupported(
    declared: str | None, filename: str | None, named: str
) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        resolve_content_type(declared, filename)
    assert info.value.status_code == 415
    assert info.value.code == "unsupported_media_type"
    assert named in info.value.message
    for supported in sorted(CONTENT_TYPES):
        assert supported in info.value.message


def test_parse_document_rejects_non_canonical_type() -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        parse_document(b"hello", "text/x-markdown")
    assert "'text/x-markdown'" in info.value.message


# --------------------------------------------------------------------------- empty input


@pytest.mark.parametrize("content_type", sorted(CONTENT_TYPES))
def test_zero_bytes_is_empty(content_type: str) -> None:
    with pytest.raises(EmptyDocument) as info:
        parse_document(b"", content_type)
    assert info.value.message == "document is empty (0 bytes)"
    assert info.value.status_code == 422
    assert info.value.code == "empty_document"


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        (PLAIN, b" \n\t\r\n  \n"),
        (PLAIN, b"\xef\xbb\xbf\x00\x00 \n"),
        (MARKDOWN, b"---\ntitle: x\n---\n\n   \n"),
        (MARKDOWN, b"- \n-\n\n```\n   \n```\n"),
        (HTML, b"<html><head><title>T</title><script>var a = 1;</script></head><body> </body>"),
        (HTML, b"<body><nav>Menu</nav><p>  </p><style>p{}</style></body>"),
    ],
)
def test_whitespace_only_is_empty(content_type: str, data: bytes) -> None:
    with pytest.raises(EmptyDocument) as info:
        parse_document(data, content_type)
    assert info.value.message == "document has no text"


def test_headings_only_is_empty_with_a_specific_message() -> None:
    with pytest.raises(EmptyDocument) as info:
        parse_document(b"# Title\n\n## Sub\n", MARKDOWN)
    assert info.value.message == "document has no text (only headings, no body text)"


# --------------------------------------------------------------------------- text/plain


def test_plain_text_paragraphs() -> None:
    data = (
        b"\xef\xbb\xbfFirst   paragraph\twith tabs\r\nand a wrapped line.\r\n"
        b"\r\n \t \r\n"
        b"Second\x00 paragraph \xe2\x80\x94 caf\xc3\xa9.\n\n\n\nThird.\n"
    )
    doc = parse_document(data, PLAIN)
    assert doc == ParsedDocument(
        content_type=PLAIN,
        title=None,
        sections=(
            Section(
                heading_path=(),
                paragraphs=(
                    "First paragraph with tabs and a wrapped line.",
                    "Second paragraph \u2014 caf\u00e9.",
                    "Third.",
                ),
            ),
        ),
    )
    assert doc.text == (
        "First paragraph with tabs and a wrapped line.\n\nSecond paragraph \u2014 caf\u00e9."
        "\n\nThird."
    )


@pytest.mark.parametrize(
    ("data", "offset", "byte"),
    [
        (b"ok\xff then", 2, "0xff"),
        (b"caf\xe9 au lait", 3, "0xe9"),
        (b"abc\xe2\x82", 3, "0xe2"),  # truncated multi-byte sequence at the end
    ],
)
def test_plain_text_invalid_utf8_names_the_offset(data: bytes, offset: int, byte: str) -> None:
    with pytest.raises(InvalidEncoding) as info:
        parse_document(data, PLAIN)
    assert info.value.message == (
        f"text is not valid UTF-8: invalid byte {byte} at byte offset {offset}"
    )
    assert info.value.code == "invalid_encoding"


def test_markdown_invalid_utf8() -> None:
    with pytest.raises(InvalidEncoding) as info:
        parse_document(b"# Title\n\nbad \xc3\x28 byte\n", MARKDOWN)
    assert "at byte offset 13" in info.value.message


# --------------------------------------------------------------------------- text/markdown

MARKDOWN_DOC = """\
---
title: Front Matter Title
tags: [a, b]
---

Intro text before any heading.

# Install Guide

Read *this* **carefully**, see [the docs](https://example.com/docs) and `ragline --help`.
A soft-wrapped
line.

## On Linux

- Download the package
- Run the installer
  - nested item

1. first step
2. second step

> Quoted advice
> continues here.

```bash
pip install ragline
  ragline demo{TRAILING_SPACES}

```

    indented code

Setext Heading
--------------

| Name | Value |
|------|-------|
| a    | 1     |
| *b*  |       |

### Deep

Deep text ![diagram *alt*](d.png).

# Usage

Usage body with &amp; entity and ~~strike~~.

<div>raw <b>html</b> block</div>
""".replace("{TRAILING_SPACES}", "   ")  # kept out of the source so formatters leave it alone


def test_markdown_structure() -> None:
    doc = parse_document(MARKDOWN_DOC.encode(), MARKDOWN)
    assert doc.content_type == MARKDOWN
    assert doc.title == "Install Guide"
    assert doc.sections == (
        Section((), ("Intro text before any heading.",)),
        Section(
            ("Install Guide",),
            ("Read this carefully, see the docs and ragline --help. A soft-wrapped line.",),
        ),
        Section(
            ("Install Guide", "On Linux"),
            (
                "Download the package",
                "Run the installer",
                "nested item",
                "first step",
                "second step",
                "Quoted advice continues here.",
                "pip install ragline\n  ragline demo",
                "indented code",
            ),
        ),
        Section(("Install Guide", "Setext Heading"), ("Name | Value", "a | 1", "b | ")),
        Section(("Install Guide", "Setext Heading", "Deep"), ("Deep text diagram alt.",)),
        Section(
            ("Usage",),
            ("Usage body with & entity and strike.", "raw html block"),
        ),
    )


def test_markdown_text_writes_each_heading_once() -> None:
    doc = parse_document(MARKDOWN_DOC.encode(), MARKDOWN)
    assert doc.text == "\n\n".join(
        [
            "Intro text before any heading.",
            "Install Guide",
            "Read this carefully, see the docs and ragline --help. A soft-wrapped line.",
            "On Linux",
            "Download the package",
            "Run the installer",
            "nested item",
            "first step",
            "second step",
            "Quoted advice continues here.",
            "pip install ragline\n  ragline demo",
            "indented code",
            "Setext Heading",
            "Name | Value",
            "a | 1",
            "b | ",
            "Deep",
            "Deep text diagram alt.",
            "Usage",
            "Usage body with & entity and strike.",
            "raw html block",
        ]
    )


def test_markdown_front_matter_title_when_no_h1_and_h1_resets_path() -> None:
    data = b"---\ntitle: 'Quoted Title'\n---\n## Sub\n\nA\n\n# One\n\nB\n\n# One\n\nC\n"
    doc = parse_document(data, MARKDOWN)
    assert doc.title == "One"
    assert doc.sections == (
        Section(("Sub",), ("A",)),
        Section(("One",), ("B",)),
        Section(("One",), ("C",)),
    )
    # A repeated heading is written again, not swallowed.
    assert doc.text == "Sub\n\nA\n\nOne\n\nB\n\nOne\n\nC"

    only_fm = parse_document(b'---\ntitle: "Quoted Title"\n---\nBody\n', MARKDOWN)
    assert only_fm.title == "Quoted Title"
    assert only_fm.sections == (Section((), ("Body",)),)


def test_markdown_unclosed_front_matter_is_content() -> None:
    doc = parse_document(b"---\nnot: closed\n\nBody\n", MARKDOWN)
    assert doc.title is None
    assert doc.sections == (Section((), ("not: closed", "Body")),)


# --------------------------------------------------------------------------- text/html

HTML_DOC = """\
<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">
  <title>  Caf\u00e9   Guide </title>
  <style>body { color: red }</style>
  <script>var secret = "dropped";</script>
</head>
<body>
  <header><h1>Site Banner</h1><p>Login</p></header>
  <nav><ul><li>Home</li><li>About</li></ul></nav>
  <div>Loose div text <span>with span</span></div>
  <main>
    <article>
      <header><h1>Caf\u00e9 Article</h1></header>
      <p>First   <b>para</b>
         graph.</p>
      <h2>Section A</h2>
      <ul><li>item one<ul><li>nested</li></ul></li><li>item two</li></ul>
      <pre>line 1
  line 2  </pre>
      <blockquote><p>quoted</p></blockquote>
      <noscript>enable js</noscript>
      <template><p>hidden</p></template>
      <h3>Deeper</h3>
      <table>
        <caption>Prices</caption>
        <thead><tr><th>Item</th><th>Cost</th></tr></thead>
        <tbody><tr><td>Tea</td><td>2 &euro;</td></tr><tr><td></td><td></td></tr></tbody>
      </table>
      <div>before<br><br>after<br>same para</div>
      <h2>Section B</h2>
      <p>B text<script>alert(1)</script></p>
      <footer>Article footer</footer>
    </article>
  </main>
  <footer>Site footer</footer>
</body>
</html>
"""


def test_html_structure_with_charset_meta() -> None:
    data = HTML_DOC.encode("latin-1", errors="xmlcharrefreplace")
    assert b"Caf\xe9" in data  # really latin-1, invalid as UTF-8
    doc = parse_document(data, HTML)
    assert doc.content_type == HTML
    assert doc.title == "Caf\u00e9 Guide"
    assert doc.sections == (
        Section((), ("Loose div text with span",)),
        Section(("Caf\u00e9 Article",), ("First para graph.",)),
        Section(
            ("Caf\u00e9 Article", "Section A"),
            ("item one", "nested", "item two", "line 1\n  line 2", "quoted"),
        ),
        Section(
            ("Caf\u00e9 Article", "Section A", "Deeper"),
            ("Prices", "Item | Cost", "Tea | 2 \u20ac", "before", "after same para"),
        ),
        Section(("Caf\u00e9 Article", "Section B"), ("B text", "Article footer")),
    )


def test_html_title_falls_back_to_first_h1_and_utf8_default() -> None:
    data = "<p>pre</p><h2>Two</h2><h1>\u00dcber</h1><p>x</p><h1>Later</h1>".encode()
    doc = parse_document(data, HTML)
    assert doc.title == "\u00dcber"
    assert doc.sections == (
        Section((), ("pre",)),
        Section(("\u00dcber",), ("x",)),
    )


def test_html_meta_charset_attribute_windows_1252() -> None:
    data = b'<meta charset="windows-1252"><p>\x93smart\x94 quotes</p>'
    doc = parse_document(data, HTML)
    assert doc.sections == (Section((), ("\u201csmart\u201d quotes",)),)


def test_html_invalid_utf8_without_charset() -> None:
    with pytest.raises(InvalidEncoding) as info:
        parse_document(b"<p>caf\xe9</p>", HTML)
    assert info.value.message == "HTML is not valid UTF-8: invalid byte 0xe9 at byte offset 6"


def test_html_invalid_for_declared_charset() -> None:
    with pytest.raises(InvalidEncoding) as info:
        parse_document(b'<meta charset="shift_jis"><p>\x81\x20</p>', HTML)
    assert "shift_jis" in info.value.message
    assert "offset 29" in info.value.message


def test_html_deep_nesting_does_not_recurse() -> None:
    depth = 5000
    data = ("<div>" * depth + "<span>deep</span>" + "</div>" * depth).encode()
    doc = parse_document(data, HTML)
    assert doc.sections == (Section((), ("deep",)),)


# --------------------------------------------------------------------------- application/pdf


PDF_PAGES = [
    [
        "Preface text before any chapter starts here.",
        "1 Introduction",
        "This is the first paragraph of the introduction and it",
        "wraps over several lines of text until it finally ends",
        "here.",
        "A second paragraph that is short.",
        "- bullet one",
        "- bullet two",
        "1",
    ],
    [
        "1.1 Background",
        "Background text that is long enough to set the page width of",
        "the page and a hyphen-",
        "ated word joins.",
        "2",
    ],
    [
        "Still background on the next page, without its own bookmark.",
        "Page 3 of 4",
    ],
    [
        "Text on the page before the heading is matched.",
        "2 Results",
        "Results text.",
    ],
]
PDF_OUTLINE = [
    Bookmark("1 Introduction", 0, [Bookmark("1.1 Background", 1)]),
    Bookmark("2 Results", 3),
]


def test_hand_written_pdf_is_valid() -> None:
    # Guard for the fixture itself: pypdf reads it strictly and sees the nested outline.
    reader = PdfReader(io.BytesIO(make_pdf(PDF_PAGES, PDF_OUTLINE, "Doc")), strict=True)
    assert len(reader.pages) == 4
    chapter, children = reader.outline[0], reader.outline[1]
    assert isinstance(chapter, Destination)
    assert chapter.title == "1 Introduction"
    assert isinstance(children, list)
    assert isinstance(children[0], Destination)
    assert children[0].title == "1.1 Background"
    assert [reader.get_destination_page_number(chapter)] == [0]


def test_pdf_with_outline() -> None:
    doc = parse_document(make_pdf(PDF_PAGES, PDF_OUTLINE, title="A  Report"), PDF)
    assert doc.content_type == PDF
    assert doc.title == "A Report"
    assert doc.sections == (
        Section((), ("Preface text before any chapter starts here.",)),
        Section(
            ("1 Introduction",),
            (
                "This is the first paragraph of the introduction and it wraps over several "
                "lines of text until it finally ends here.",
                "A second paragraph that is short.",
                "- bullet one",
                "- bullet two",
            ),
        ),
        Section(
            ("1 Introduction", "1.1 Background"),
            (
                "Background text that is long enough to set the page width of the page and "
                "a hyphenated word joins.",
                "Still background on the next page, without its own bookmark.",
                "Text on the page before the heading is matched.",
            ),
        ),
        Section(("2 Results",), ("Results text.",)),
    )
    assert doc.text.startswith(
        "Preface text before any chapter starts here.\n\n1 Introduction\n\nThis is the first"
    )


def test_pdf_without_outline_has_empty_heading_path() -> None:
    doc = parse_document(make_pdf([["Hello PDF world."], ["Second page."]]), PDF)
    assert doc.title is None
    assert doc.sections == (Section((), ("Hello PDF world.", "Second page.")),)
    assert doc.text == "Hello PDF world.\n\nSecond page."


def test_pdf_bookmark_without_matching_line_starts_at_page_top() -> None:
    pdf = make_pdf([["Alpha."], ["Beta."]], [Bookmark("Chapter Two", 1)])
    doc = parse_document(pdf, PDF)
    assert doc.sections == (Section((), ("Alpha.",)), Section(("Chapter Two",), ("Beta.",)))


def test_pdf_without_text_layer() -> None:
    with pytest.raises(EmptyDocument) as info:
        parse_document(make_pdf([[], []]), PDF)
    assert "no text layer" in info.value.message


@pytest.mark.parametrize("user_password", ["", "secret"])
def test_encrypted_pdf(user_password: str) -> None:
    data = encrypt_pdf(make_pdf([["Secret text."]]), user_password)
    assert PdfReader(io.BytesIO(data)).is_encrypted
    with pytest.raises(EncryptedDocument) as info:
        parse_document(data, PDF)
    assert info.value.code == "encrypted_document"
    assert info.value.message == "PDF is encrypted; upload an unencrypted copy"


@pytest.mark.parametrize(
    "encrypt",
    [
        "<< /Filter /PubSec /SubFilter /adbe.pkcs7.s5 /V 4 >>",
        "<< /Filter /Standard /V 5 /R 6 /Length 256 /P -4 /O <00> /U <00> /OE <00> /UE <00> "
        "/Perms <00> /CF << /StdCF << /CFM /AESV3 /AuthEvent /DocOpen /Length 32 >> >> "
        "/StmF /StdCF /StrF /StdCF >>",
    ],
    ids=["public-key", "aes-256-bogus-keys"],
)
def test_encrypted_pdf_pypdf_cannot_open(encrypt: str) -> None:
    # pypdf fails while opening these (unsupported handler / no AES backend / bad keys); the
    # file is still encrypted, and that is what the client needs to hear.
    with pytest.raises(EncryptedDocument):
        parse_document(make_pdf([["Secret text."]], encrypt=encrypt), PDF)


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a pdf at all",
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
        b"%PDF-1.4\n%garbage garbage garbage\n",
        make_pdf([["Some text here."]])[:300],
        make_pdf([["Some text here."]])[:-40],
    ],
    ids=["text", "png", "header-only", "truncated-300", "truncated-tail"],
)
def test_unparseable_pdf(data: bytes) -> None:
    with pytest.raises(UnparseableDocument) as info:
        parse_document(data, PDF)
    assert info.value.code == "unparseable_document"
    assert "Traceback" not in info.value.message
    assert info.value.message.startswith(("not a PDF file", "cannot read PDF"))


# --------------------------------------------------------------------------- DOCX


def _docx_bytes(*, core_title: str | None = None) -> bytes:
    document = docx.Document()
    if core_title is not None:
        document.core_properties.title = core_title
    document.add_paragraph("Before any heading.")
    document.add_paragraph("Annual  Report", style="Title")
    document.add_paragraph("Summary paragraph.")
    document.add_heading("Scope", level=1)
    document.add_paragraph("Scope\tbody.")
    document.add_paragraph("")
    document.add_heading("Details", level=2)
    document.add_paragraph("A list item", style="List Bullet")
    table = document.add_table(rows=3, cols=3)
    for r, values in enumerate([("Name", "Qty", "Note"), ("Apples", "3", "fresh"), ("", "", "")]):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    merged = table.cell(1, 1).merge(table.cell(1, 2))
    merged.text = "3 fresh"
    document.add_paragraph("After the table.")
    document.add_heading("Deep", level=3)
    document.add_paragraph("Deep body.")
    document.add_heading("Results", level=1)
    document.add_paragraph("Results body.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_docx_structure() -> None:
    doc = parse_document(_docx_bytes(), DOCX)
    assert doc.content_type == DOCX
    assert doc.title == "Annual Report"
    assert doc.sections == (
        Section((), ("Before any heading.",)),
        Section(("Annual Report",), ("Summary paragraph.",)),
        Section(("Annual Report", "Scope"), ("Scope body.",)),
        Section(
            ("Annual Report", "Scope", "Details"),
            ("A list item", "Name | Qty | Note", "Apples | 3 fresh", "After the table."),
        ),
        Section(("Annual Report", "Scope", "Details", "Deep"), ("Deep body.",)),
        Section(("Annual Report", "Results"), ("Results body.",)),
    )


def test_docx_core_title_wins() -> None:
    assert parse_document(_docx_bytes(core_title=" Core Title "), DOCX).title == "Core Title"


@pytest.mark.parametrize(
    "data",
    [
        b"definitely not a docx",
        b"PK\x03\x04 truncated zip",
    ],
    ids=["text", "truncated-zip"],
)
def test_unparseable_docx(data: bytes) -> None:
    with pytest.raises(UnparseableDocument) as info:
        parse_document(data, DOCX)
    assert info.value.message.startswith(("not a DOCX file", "cannot read DOCX"))


def test_zip_that_is_not_a_docx() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hello")
    with pytest.raises(UnparseableDocument) as info:
        parse_document(out.getvalue(), DOCX)
    assert info.value.message.startswith("cannot read DOCX")


def test_docx_cut_in_half() -> None:
    data = _docx_bytes()
    with pytest.raises(UnparseableDocument):
        parse_document(data[: len(data) // 2], DOCX)


def test_empty_docx_has_no_text() -> None:
    out = io.BytesIO()
    docx.Document().save(out)
    with pytest.raises(EmptyDocument) as info:
        parse_document(out.getvalue(), DOCX)
    assert info.value.message == "document has no text"
