"""A small HTTP client for bulk uploads (the CLI's ``ingest`` and ``demo``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import httpx

SUPPORTED_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}


def iter_files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in SUPPORTED_SUFFIXES))
        elif p.is_file():
            found.append(p)
    return found


async def upload_paths(
    url: str,
    key: str,
    index: str,
    paths: Iterable[Path],
    *,
    echo: Callable[[str], None] = print,
    base: Path | None = None,
) -> int:
    """Upload every file; returns how many failed. The source is the path relative to
    ``base`` (or as given), so re-running updates the same documents."""
    failures = 0
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600
    ) as client:
        for f in iter_files(paths):
            source = str(f.relative_to(base)) if base else str(f)
            resp = await client.post(
                f"/v1/indexes/{index}/documents",
                files={"file": (f.name, f.read_bytes())},
                data={"source": source},
            )
            if resp.status_code in (200, 201):
                body = resp.json()
                echo(
                    f"{source}: version {body['version']}, {body['chunks']} chunks, "
                    f"{body['chunks_written']} written"
                )
            else:
                failures += 1
                err = resp.json().get("error", {})
                echo(f"{source}: {resp.status_code} {err.get('code')}: {err.get('message')}")
    return failures
