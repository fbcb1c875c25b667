"""Where a function's code is: the file its handler's module loads from, and that file's digest."""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple


def handler_module_file(code: Path, handler: str) -> Path | None:
    """The file that `import` would load for the handler's module, or None if there is none."""
    module = handler.rsplit(".", 1)[0].replace("/", ".")
    base = code.joinpath(*module.split("."))
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    if base.parent.is_dir():  # compiled modules: name.cpython-311-x86_64-linux-gnu.so, name.pyc
        for found in base.parent.glob(base.name + ".*"):
            if found.suffix in (".so", ".pyd", ".pyc"):
                return found
    return None


class CodeFile(NamedTuple):
    size: int  #: bytes (Lambda's CodeSize)
    sha256: str  #: base64 (Lambda's CodeSha256)
    mtime: float  #: when it was last saved, wall time


def code_file(path: Path | None) -> CodeFile:
    """What Lambda reports of the handler's file (all zero, and the digest of nothing, with none).

    GetFunction and ListFunctions ask on every request: the file is read again only when its stat says
    it changed (saved, replaced or renamed over), not each time.
    """
    if path is None:
        return CodeFile(0, _EMPTY_SHA256, 0)
    info = path.stat()
    size, digest = _digest(path, info.st_mtime_ns, info.st_size, info.st_ino)
    return CodeFile(size, digest, info.st_mtime)


#: The digest of no code at all: base64 SHA-256 of b"".
_EMPTY_SHA256 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@lru_cache(maxsize=1024)
def _digest(path: Path, mtime_ns: int, size: int, inode: int) -> tuple[int, str]:
    """(The stat fields are the cache key only.)"""
    import hashlib  # (here: validation imports this module, and only the API needs a digest)

    code = path.read_bytes()
    return len(code), base64.b64encode(hashlib.sha256(code).digest()).decode()
