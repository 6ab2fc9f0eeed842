"""Turn uploaded bytes into structured text for structure-aware chunking.

Contract:

* ``resolve_content_type(declared, filename)`` maps a declared MIME type (parameters stripped,
  case-insensitive, common aliases accepted) or, when none / ``application/octet-stream`` is
  declared, the filename extension to one of ``CONTENT_TYPES``; anything else raises
  ``UnsupportedMediaType``.
* ``parse_document(data, content_type)`` takes a canonical type and returns a
  ``ParsedDocument``: a tuple of ``Section`` (heading path + paragraphs, in document order) and an
  optional title. Every paragraph is non-empty, NUL-free and whitespace-normalised (runs of
  whitespace collapse to one space) except code blocks, which keep their line breaks. Sections
  without paragraphs are dropped; their headings survive in their descendants' ``heading_path``.
* Failures raise the domain errors from ``ragapi.errors`` and never a library exception:
  ``EmptyDocument`` (zero bytes, no text, PDF without a text layer), ``InvalidEncoding`` (bad
  UTF-8 / declared charset, with the byte offset), ``UnparseableDocument`` (broken PDF/DOCX),
  ``EncryptedDocument`` (any encrypted PDF), ``UnsupportedMediaType`` (unknown type).

Both functions are pure: no I/O, no global state. Parsing is CPU-bound; callers on an event loop
should run ``parse_document`` in a worker thread.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from selectolax.lexbor import LexborHTMLParser, LexborNode

from ragapi.errors import (
    EmptyDocument,
    EncryptedDocument,
    InvalidEncoding,
    UnparseableDocument,
    UnsupportedMediaType,
)

__all__ = [
    "CONTENT_TYPES",
    "DOCX",
    "HTML",
    "MARKDOWN",
    "PDF",
    "PLAIN",
    "ParsedDocument",
    "Section",
    "parse_document",
    "resolve_content_type",
]

PLAIN = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

CONTENT_TYPES: frozenset[str] = frozenset({PLAIN, MARKDOWN, HTML, PDF, DOCX})

_ALIASES: dict[str, str] = {
    **{t: t for t in CONTENT_TYPES},
    "text": PLAIN,
    "txt": PLAIN,
    "text/x-markdown": MARKDOWN,
    "text/md": MARKDOWN,
    "text/x-md": MARKDOWN,
    "markdown": MARKDOWN,
    "md": MARKDOWN,
    "application/xhtml+xml": HTML,
    "html": HTML,
    "htm": HTML,
    "application/x-pdf": PDF,
    "pdf": PDF,
    "docx": DOCX,
}

_EXTENSIONS: dict[str, str] = {
    "txt": PLAIN,
    "md": MARKDOWN,
    "markdown": MARKDOWN,
    "html": HTML,
    "htm": HTML,
    "pdf": PDF,
    "docx": DOCX,
}

# Types that say "unknown binary", so the filename is the better witness.
_UNKNOWN_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})

_SUPPORTED_LIST = ", ".join(sorted(CONTENT_TYPES))


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True, slots=True)
class Section:
    heading_path: tuple[str, ...]
    paragraphs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    content_type: str
    title: str | None
    sections: tuple[Section, ...]

    @property
    def text(self) -> str:
        """Headings and paragraphs joined by blank lines, each heading written once."""
        blocks: list[str] = []
        prev: tuple[str, ...] = ()
        for section in self.sections:
            path = section.heading_path
            common = 0
            while common < min(len(prev), len(path)) and prev[common] == path[common]:
                common += 1
            # A path equal to (or a prefix of) the previous one can only come from a repeated
            # heading, so its last component is new text and must be written again.
            if path and common == len(path):
                common -= 1
            blocks.extend(path[common:])
            blocks.extend(section.paragraphs)
            prev = path
        return "\n\n".join(blocks)


# --------------------------------------------------------------------------- content types


def resolve_content_type(declared: str | None, filename: str | None) -> str:
    """Map a declared MIME type, or failing that the filename extension, to a canonical type."""
    mime = (declared or "").split(";", 1)[0].strip().lower()
    if mime and mime not in _UNKNOWN_TYPES:
        canonical = _ALIASES.get(mime)
        if canonical is None:
            raise UnsupportedMediaType(
                f"unsupported content type {mime!r}; supported types: {_SUPPORTED_LIST}"
            )
        return canonical
    ext = _extension(filename)
    canonical = _EXTENSIONS.get(ext) if ext else None
    if canonical is None:
        what = f"content type {mime!r}" if mime else "no content type"
        raise UnsupportedMediaType(
            f"cannot determine the document type ({what}, filename {filename!r}); "
            f"supported types: {_SUPPORTED_LIST} "
            f"(or extensions: {', '.join('.' + e for e in sorted(_EXTENSIONS))})"
        )
    return canonical


def _extension(filename: str | None) -> str:
    if not filename:
        return ""
    # Browsers on Windows may send the full client path.
    base = re.split(r"[\\/]", filename.strip())[-1]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem else ""


# --------------------------------------------------------------------------- entry point


def parse_document(data: bytes, content_type: str) -> ParsedDocument:
    """Parse ``data`` of canonical ``content_type`` into sections of paragraphs."""
    if content_type not in CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"unsupported content type {content_type!r}; supported types: {_SUPPORTED_LIST}"
        )
    if not data:
        raise EmptyDocument("document is empty (0 bytes)")
    if content_type == PLAIN:
        title, builder = _parse_plain(data)
    elif content_type == MARKDOWN:
        title, builder = _parse_markdown(data)
    elif content_type == HTML:
        title, builder = _parse_html(data)
    elif content_type == PDF:
        title, builder = _parse_pdf(data)
    else:
        title, builder = _parse_docx(data)
    sections = builder.finish()
    if not sections:
        if builder.saw_heading:
            raise EmptyDocument("document has no text (only headings, no body text)")
        raise EmptyDocument("document has no text")
    return ParsedDocument(content_type=content_type, title=title, sections=sections)


# --------------------------------------------------------------------------- shared helpers

_WS = re.compile(r"\s+")
_SURROGATES = re.compile("[\ud800-\udfff]")
_BLANK_LINE = re.compile(r"\n[ \t\f\v]*\n")


def _scrub(text: str) -> str:
    # NUL is unstorable in Postgres text; lone surrogates (from lenient extractors) are
    # unencodable as UTF-8.
    return _SURROGATES.sub("\ufffd", text.replace("\x00", ""))


def _clean(text: str) -> str:
    return _WS.sub(" ", _scrub(text)).strip()


def _clean_code(text: str) -> str:
    text = _scrub(text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


class _SectionBuilder:
    """Accumulates paragraphs under the current heading path."""

    def __init__(self) -> None:
        self._sections: list[Section] = []
        self._path: tuple[str, ...] = ()
        self._paragraphs: list[str] = []
        self._stack: list[tuple[int, str]] = []
        self.saw_heading = False

    def heading(self, level: int, text: str) -> str | None:
        """Open a heading of ``level`` (lower nests shallower); returns the cleaned text."""
        text = _clean(text)
        if not text:
            return None
        self.saw_heading = True
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        self._close()
        self._path = tuple(t for _, t in self._stack)
        return text

    def set_path(self, path: tuple[str, ...]) -> None:
        """Switch to an explicit path; a no-op when unchanged so content flows across pages."""
        if path != self._path:
            self.saw_heading = self.saw_heading or bool(path)
            self._close()
            self._path = path

    def add(self, text: str) -> None:
        text = _clean(text)
        if text:
            self._paragraphs.append(text)

    def add_code(self, text: str) -> None:
        text = _clean_code(text)
        if text.strip():
            self._paragraphs.append(text)

    def add_row(self, cells: Sequence[str]) -> None:
        cleaned = [_clean(c) for c in cells]
        if any(cleaned):
            self._paragraphs.append(" | ".join(cleaned))

    def _close(self) -> None:
        if self._paragraphs:
            self._sections.append(Section(self._path, tuple(self._paragraphs)))
        self._paragraphs = []

    def finish(self) -> tuple[Section, ...]:
        self._close()
        return tuple(self._sections)


def _decode_utf8(data: bytes, what: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncoding(
            f"{what} is not valid UTF-8: invalid byte 0x{data[exc.start]:02x} "
            f"at byte offset {exc.start}"
        ) from exc
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------- text/plain


def _parse_plain(data: bytes) -> tuple[str | None, _SectionBuilder]:
    builder = _SectionBuilder()
    for block in _BLANK_LINE.split(_decode_utf8(data, "text")):
        builder.add(block)
    return None, builder


# --------------------------------------------------------------------------- text/markdown

# A YAML block opened by the very first line and closed by a later '---' or '...' line.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<body>.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FM_TITLE = re.compile(r"^title:[ \t]*(?P<title>.+?)[ \t]*$", re.M)

# commonmark + GFM tables/strikethrough; linkify is left out because it needs an extra package.
_MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _parse_markdown(data: bytes) -> tuple[str | None, _SectionBuilder]:
    text = _decode_utf8(data, "markdown")
    fm_title: str | None = None
    match = _FRONT_MATTER.match(text)
    if match:
        title_match = _FM_TITLE.search(match.group("body") or "")
        if title_match:
            fm_title = _clean(title_match.group("title").strip("\"'")) or None
        text = text[match.end() :]

    builder = _SectionBuilder()
    first_h1: str | None = None
    heading_level: int | None = None
    row: list[str] | None = None
    for token in _MD.parse(text):
        kind = token.type
        if kind == "heading_open":
            heading_level = int(token.tag[1:])
        elif kind == "heading_close":
            heading_level = None
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":
            if row is not None:
                builder.add_row(row)
            row = None
        elif kind in ("th_open", "td_open") and row is not None:
            # Placeholder so an empty cell keeps its column.
            row.append("")
        elif kind == "inline":
            content = _md_inline_text(token.children or [])
            if heading_level is not None:
                heading = builder.heading(heading_level, content)
                if heading_level == 1 and first_h1 is None:
                    first_h1 = heading
            elif row is not None:
                if row:
                    row[-1] = content
            else:
                builder.add(content)
        elif kind in ("fence", "code_block"):
            builder.add_code(token.content)
        elif kind == "html_block":
            builder.add(_html_fragment_text(token.content))
    return first_h1 or fm_title, builder


def _md_inline_text(tokens: Sequence[Token]) -> str:
    parts: list[str] = []
    # Explicit stack: image alt text nests inline tokens, and input depth is untrusted.
    stack: list[Iterator[Token]] = [iter(tokens)]
    while stack:
        token = next(stack[-1], None)
        if token is None:
            stack.pop()
            continue
        if token.type in ("text", "text_special", "code_inline"):
            parts.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif token.type == "image" and token.children:
            stack.append(iter(token.children))
    return "".join(parts)


# --------------------------------------------------------------------------- text/html

_DROP_TAGS = frozenset({"script", "style", "nav", "noscript", "template", "svg", "head"})
# Page-level banners are boilerplate; an <article>/<main> header or footer is real content
# (it usually holds the article's h1).
_CHROME_TAGS = frozenset({"header", "footer"})
_CONTENT_ROOTS = frozenset({"article", "main"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hgroup",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "menu",
        "ol",
        "p",
        "section",
        "summary",
        "ul",
    }
)
_TABLE_SECTIONS = frozenset({"thead", "tbody", "tfoot"})

_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
# WHATWG: these labels mean windows-1252; a utf-16 label in a byte-sniffed meta is a lie.
_LATIN1_CODECS = frozenset({"latin_1", "iso8859-1", "ascii"})
_UTF16_CODECS = frozenset({"utf-16", "utf-16-le", "utf-16-be"})


def _decode_html(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return _decode_utf8(data, "HTML")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8"
        match = _META_CHARSET.search(data[:4096])
        if match:
            try:
                encoding = codecs.lookup(match.group(1).decode("ascii")).name
            except LookupError:
                encoding = "utf-8"  # unknown label: assume the common case
            if encoding in _UTF16_CODECS:
                encoding = "utf-8"
            elif encoding in _LATIN1_CODECS:
                encoding = "cp1252"
    if encoding == "utf-8":
        return _decode_utf8(data, "HTML")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "cp1252":
            # The five bytes cp1252 leaves undefined map to C1 controls in browsers.
            text = data.decode("latin-1")
        else:
            raise InvalidEncoding(
                f"HTML is not valid {encoding} (declared charset): invalid byte "
                f"0x{data[exc.start]:02x} at byte offset {exc.start}"
            ) from exc
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _children(node: LexborNode) -> Iterator[LexborNode]:
    child = node.child
    while child is not None:
        yield child
        child = child.next


def _node_text(node: LexborNode) -> str:
    """Raw text under ``node``, skipping dropped elements (iterative: depth is untrusted)."""
    parts: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_text_node:
            parts.append(current.text_content or "")
        elif current.is_element_node and current.tag not in _DROP_TAGS:
            if current.tag == "br":
                parts.append("\n")
            stack.extend(reversed(list(_children(current))))
    return "".join(parts)


def _html_table(node: LexborNode, builder: _SectionBuilder) -> None:
    rows: list[LexborNode] = []
    for child in _children(node):
        if child.tag == "tr":
            rows.append(child)
        elif child.tag in _TABLE_SECTIONS:
            rows.extend(c for c in _children(child) if c.tag == "tr")
        elif child.tag == "caption":
            builder.add(_node_text(child))
    for row in rows:
        builder.add_row([_node_text(c) for c in _children(row) if c.tag in ("td", "th")])


def _parse_html(data: bytes) -> tuple[str | None, _SectionBuilder]:
    tree = LexborHTMLParser(_decode_html(data))
    builder = _SectionBuilder()
    first_h1: str | None = None
    buffer: list[str] = []

    def flush() -> None:
        # <br><br> inside running text is a paragraph break in practice.
        for block in _BLANK_LINE.split("".join(buffer)):
            builder.add(block)
        buffer.clear()

    root = tree.body or tree.root
    # (node, exiting, inside article/main)
    stack: list[tuple[LexborNode, bool, bool]] = [(root, False, False)] if root else []
    while stack:
        node, exiting, in_content = stack.pop()
        if exiting:
            flush()
            continue
        if node.is_text_node:
            buffer.append(node.text_content or "")
            continue
        if not node.is_element_node:
            continue
        tag = node.tag or ""
        if tag in _DROP_TAGS or (tag in _CHROME_TAGS and not in_content):
            continue
        if tag in _HEADINGS:
            flush()
            heading = builder.heading(_HEADINGS[tag], _node_text(node))
            if tag == "h1" and first_h1 is None:
                first_h1 = heading
        elif tag == "pre":
            flush()
            builder.add_code(_node_text(node))
        elif tag == "table":
            flush()
            _html_table(node, builder)
        elif tag == "br":
            buffer.append("\n")
        else:
            if tag in _BLOCK_TAGS:
                flush()
                stack.append((node, True, in_content))
            inside = in_content or tag in _CONTENT_ROOTS
            stack.extend((c, False, inside) for c in reversed(list(_children(node))))
    flush()

    title: str | None = None
    title_node = tree.head.css_first("title") if tree.head is not None else None
    if title_node is not None:
        title = _clean(title_node.text(deep=True)) or None
    return title or first_h1, builder


def _html_fragment_text(html: str) -> str:
    root = LexborHTMLParser(html).body
    return _node_text(root) if root is not None else ""


# --------------------------------------------------------------------------- application/pdf

_ENCRYPT_REF = re.compile(rb"/Encrypt\s*(?:\d+\s+\d+\s+R|<<)")
_PAGE_NUMBER = re.compile(r"(?:page\s+)?\d{1,5}(?:\s*(?:/|of)\s*\d{1,5})?", re.I)
_BULLET = re.compile(r"(?:[•◦▪‣·*-]|\d{1,3}[.)])\s")
_HYPHEN_END = re.compile(r"[^\W\d_]-$")  # a letter then a hyphen
_SENTENCE_END = re.compile(r"[.!?:;][\"'\u201d\u2019)\]]*$")


def _parse_pdf(data: bytes) -> tuple[str | None, _SectionBuilder]:
    # pypdf is imported lazily: it is the heaviest dependency and only PDFs need it.
    from pypdf import PdfReader

    if b"%PDF-" not in data[:1024]:
        raise UnparseableDocument("not a PDF file (no %PDF- header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
    except Exception as exc:  # pypdf raises many unrelated types on malformed input
        # pypdf tries the empty password while opening, which fails for handlers it cannot
        # run (AES without a crypto backend, public-key security): still an encrypted file.
        if _ENCRYPT_REF.search(data):
            raise EncryptedDocument("PDF is encrypted; upload an unencrypted copy") from exc
        raise UnparseableDocument(f"cannot read PDF: {_describe(exc)}") from exc
    if encrypted:
        # Even an empty user password means the text streams are ciphered; refuse uniformly.
        raise EncryptedDocument("PDF is encrypted; upload an unencrypted copy")

    page_texts: list[str] = []
    try:
        pages = reader.pages
        page_count = len(pages)
    except Exception as exc:
        raise UnparseableDocument(f"cannot read PDF pages: {_describe(exc)}") from exc
    if page_count == 0:
        raise EmptyDocument("PDF has no pages")
    for number in range(page_count):
        try:
            page_texts.append(pages[number].extract_text() or "")
        except Exception as exc:
            raise UnparseableDocument(
                f"cannot extract text from PDF page {number + 1}: {_describe(exc)}"
            ) from exc
    if not any(_clean(t) for t in page_texts):
        raise EmptyDocument(
            "PDF has no text layer (scanned images?); run OCR on it before uploading"
        )

    marks = _pdf_outline(reader)
    builder = _SectionBuilder()
    current: tuple[str, ...] = ()
    for number, raw in enumerate(page_texts):
        lines = _strip_page_numbers([_clean(line) for line in raw.splitlines()])
        start = pos = 0
        for path in marks.get(number, []):
            key = _match_key(path[-1])
            found = next(
                (j for j in range(pos, len(lines)) if key and _match_key(lines[j]) == key), None
            )
            # The bookmark's heading line, when found on the page, splits it; otherwise the
            # bookmark starts at the top of the page (or right after the previous one).
            split = pos if found is None else found
            builder.set_path(current)
            for paragraph in _pdf_paragraphs(lines[start:split]):
                builder.add(paragraph)
            current = path
            start = pos = split if found is None else found + 1
        builder.set_path(current)
        for paragraph in _pdf_paragraphs(lines[start:]):
            builder.add(paragraph)

    title: str | None = None
    try:
        metadata = reader.metadata
        if metadata is not None and metadata.title:
            title = _clean(str(metadata.title)) or None
    except Exception:
        title = None  # broken Info dictionary: the title is optional
    return title, builder


def _describe(exc: Exception) -> str:
    # One line for the client; the traceback stays chained for server logs only.
    return _clean(str(exc))[:200] or type(exc).__name__


def _match_key(text: str) -> str:
    return re.sub(r"\W+", "", text.casefold())


def _pdf_outline(reader: Any) -> dict[int, list[tuple[str, ...]]]:
    """Page index -> heading paths of the bookmarks starting on it, in outline order."""
    entries: list[tuple[int, tuple[str, ...]]] = []
    try:
        outline = reader.outline
        # Frames: [items, parent path, path of the last bookmark seen at this level]. In
        # pypdf's outline a nested list holds the children of the bookmark just before it.
        frames: list[tuple[Iterator[Any], tuple[str, ...], list[tuple[str, ...]]]] = [
            (iter(outline), (), [()])
        ]
        while frames:
            items, parent, last = frames[-1]
            item = next(items, None)
            if item is None:
                frames.pop()
            elif isinstance(item, list):
                frames.append((iter(item), last[0] or parent, [()]))
            else:
                title = _clean(str(getattr(item, "title", "") or ""))
                path = (*parent, title) if title else parent
                last[0] = path
                page = reader.get_destination_page_number(item)
                if path and isinstance(page, int) and page >= 0:
                    entries.append((page, path))
    except Exception:
        return {}  # a broken outline only costs us headings, never the text
    entries.sort(key=lambda entry: entry[0])  # stable: outline order within a page
    marks: dict[int, list[tuple[str, ...]]] = {}
    for page, path in entries:
        marks.setdefault(page, []).append(path)
    return marks


def _strip_page_numbers(lines: list[str]) -> list[str]:
    """Drop a bare page number ("12", "Page 3 of 9") heading or footing a page."""
    content = [i for i, line in enumerate(lines) if line]
    if len(content) < 2:
        return lines
    drop = {i for i in (content[0], content[-1]) if _PAGE_NUMBER.fullmatch(lines[i])}
    return [line for i, line in enumerate(lines) if i not in drop]


def _pdf_paragraphs(lines: Sequence[str]) -> list[str]:
    """Rejoin extracted lines into paragraphs.

    PDFs store positioned lines, not paragraphs. A paragraph ends at a blank line, before a
    bullet, after a clearly short line (last line of a paragraph, or a heading), or after a
    somewhat short line ending a sentence.
    """
    width = max((len(line) for line in lines), default=0)
    paragraphs: list[str] = []
    current = ""

    def close() -> None:
        nonlocal current
        if current:
            paragraphs.append(current)
        current = ""

    for line in lines:
        if not line:
            close()
            continue
        if current and _BULLET.match(line):
            close()
        if not current:
            current = line
        elif _HYPHEN_END.search(current) and line[:1].islower():
            current = current[:-1] + line  # re-join a word hyphenated at the line end
        else:
            current = f"{current} {line}"
        if _HYPHEN_END.search(line):
            continue  # a word split at the line end always continues on the next line
        if len(line) < 0.6 * width or (_SENTENCE_END.search(line) and len(line) < 0.85 * width):
            close()
    close()
    return paragraphs


# --------------------------------------------------------------------------- DOCX

_HEADING_STYLE = re.compile(r"heading ([1-9])", re.I)


def _parse_docx(data: bytes) -> tuple[str | None, _SectionBuilder]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    if not data.startswith(b"PK"):
        raise UnparseableDocument("not a DOCX file (not a zip archive)")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # zipfile, lxml, KeyError, ValueError... on broken packages
        raise UnparseableDocument(f"cannot read DOCX: {_describe(exc)}") from exc

    builder = _SectionBuilder()
    title_style: str | None = None
    first_h1: str | None = None
    try:
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                style = block.style.name if block.style is not None else None
                level = _docx_heading_level(style or "")
                if level is None:
                    builder.add(block.text)
                    continue
                heading = builder.heading(level, block.text)
                if level == 0 and title_style is None:
                    title_style = heading
                elif level == 1 and first_h1 is None:
                    first_h1 = heading
            elif isinstance(block, Table):
                for row in block.rows:
                    cells: list[str] = []
                    previous: object = None
                    for cell in row.cells:
                        # A horizontally merged cell is reported once per grid column.
                        if cell._tc is not previous:
                            cells.append(cell.text)
                        previous = cell._tc
                    builder.add_row(cells)
        core_title = _clean(document.core_properties.title or "")
    except Exception as exc:
        raise UnparseableDocument(f"cannot read DOCX content: {_describe(exc)}") from exc
    return core_title or title_style or first_h1, builder


def _docx_heading_level(style: str) -> int | None:
    """0 for "Title" (so Heading 1 nests under it), 1-9 for "Heading N", else None."""
    if style.strip().lower() == "title":
        return 0
    match = _HEADING_STYLE.fullmatch(style.strip())
    return int(match.group(1)) if match else None
