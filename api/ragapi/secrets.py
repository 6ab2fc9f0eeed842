"""Reading provider secrets referenced by ``apiKeySecretRef: {name, key}``.

In a cluster the chart mounts each referenced Secret under ``RAGLINE_SECRETS_DIR``
(``<dir>/<name>/<key>``, as Kubernetes lays out a Secret volume). Outside one, the
environment variable ``RAGLINE_SECRET_<NAME>_<KEY>`` (upper-cased, ``-``/``.`` → ``_``)
holds it. Values are never logged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ragapi.contract import SecretKeyRef


def env_name(ref: SecretKeyRef) -> str:
    return "RAGLINE_SECRET_" + re.sub(r"[^A-Z0-9]", "_", f"{ref.name}_{ref.key}".upper())


def read_secret(ref: SecretKeyRef | None) -> str | None:
    if ref is None:
        return None
    base = os.environ.get("RAGLINE_SECRETS_DIR")
    if base:
        path = Path(base) / ref.name / ref.key
        if path.is_file():
            return path.read_text().strip()
    return os.environ.get(env_name(ref))
