"""Writing outputs safely and measuring them.

Every artifact pla-tvm writes goes through a temporary file that is renamed into place, so an
interrupted run never leaves a half-written model or report that a later stage would trust.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling of ``path`` and rename it over ``path``."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_json_atomically(path: Path, payload: Any) -> None:
    """Pretty, key-sorted JSON written with :func:`write_atomically`."""
    write_atomically(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file (read in blocks), so a record says exactly which file it describes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sizes(path: Path) -> dict[str, int]:
    """Bytes on disk and gzip-compressed (level 9) bytes of a file."""
    data = Path(path).read_bytes()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9))}
