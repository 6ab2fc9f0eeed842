"""Document fixtures built at run time (no committed binaries): PDFs written by hand,
encrypted PDFs, DOCX files."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import docx
from pypdf import PdfReader, PdfWriter


@dataclass
class Bookmark:
    title: str
    page: int
    children: list[Bookmark] = field(default_factory=list)


def _escape_pdf(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(
    pages: list[list[str]],
    outline: list[Bookmark] | None = None,
    title: str | None = None,
    encrypt: str | None = None,
) -> bytes:
    """A minimal valid PDF 1.4: Helvetica text lines per page, optional outline and /Title."""
    objects: dict[int, bytes] = {}
    next_id = 4  # 1 catalog, 2 page tree, 3 font

    def alloc() -> int:
        nonlocal next_id
        next_id += 1
        return next_id - 1

    page_ids: list[int] = []
    for lines in pages:
        page_id, content_id = alloc(), alloc()
        page_ids.append(page_id)
        if lines:
            ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
            ops += [f"({_escape_pdf(line)}) Tj T*" for line in lines]
            ops.append("ET")
        else:
            ops = ["0 0 1 rg", "72 72 200 200 re", "f"]  # a drawing, no text: "scanned"
        stream = "\n".join(ops).encode("latin-1")
        objects[content_id] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>"
        ).encode()

    catalog = "<< /Type /Catalog /Pages 2 0 R"
    if outline:
        root_id = alloc()

        def emit(items: list[Bookmark], parent: int) -> tuple[int, int, int]:
            ids = [alloc() for _ in items]
            total = len(items)
            for i, (item, item_id) in enumerate(zip(items, ids, strict=True)):
                entry = (
                    f"<< /Title ({_escape_pdf(item.title)}) /Parent {parent} 0 R "
                    f"/Dest [{page_ids[item.page]} 0 R /XYZ 0 792 0]"
                )
                if i > 0:
                    entry += f" /Prev {ids[i - 1]} 0 R"
                if i < len(items) - 1:
                    entry += f" /Next {ids[i + 1]} 0 R"
                if item.children:
                    first, last, count = emit(item.children, item_id)
                    entry += f" /First {first} 0 R /Last {last} 0 R /Count {count}"
                    total += count
                objects[item_id] = (entry + " >>").encode()
            return ids[0], ids[-1], total

        first, last, count = emit(outline, root_id)
        objects[root_id] = (
            f"<< /Type /Outlines /First {first} 0 R /Last {last} 0 R /Count {count} >>"
        ).encode()
        catalog += f" /Outlines {root_id} 0 R"
    objects[1] = (catalog + " >>").encode()
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    objects[2] = f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode()
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    encrypt_id = None
    if encrypt is not None:
        encrypt_id = alloc()
        objects[encrypt_id] = encrypt.encode()
    info_id = None
    if title is not None:
        info_id = alloc()
        objects[info_id] = f"<< /Title ({_escape_pdf(title)}) >>".encode()

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for obj_id in range(1, next_id):
        offsets[obj_id] = len(out)
        out += b"%d 0 obj\n" % obj_id + objects[obj_id] + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % next_id
    for obj_id in range(1, next_id):
        out += b"%010d 00000 n \n" % offsets[obj_id]
    trailer = f"trailer\n<< /Size {next_id} /Root 1 0 R"
    if info_id is not None:
        trailer += f" /Info {info_id} 0 R"
    if encrypt_id is not None:
        trailer += f" /Encrypt {encrypt_id} 0 R /ID [<00112233> <00112233>]"
    out += (trailer + " >>\n").encode() + b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def encrypt_pdf(pdf: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    # RC4 needs no optional crypto dependency in pypdf.
    writer.encrypt(user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(sections: list[tuple[str, list[str]]], title: str | None = None) -> bytes:
    """A DOCX with a Heading 1 and paragraphs per section."""
    document = docx.Document()
    if title:
        document.add_heading(title, level=0)
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for p in paragraphs:
            document.add_paragraph(p)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
