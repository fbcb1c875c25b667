"""A bucket's folder seen as objects: which path is which key, what a file is now, and its content.

Every read here refuses to follow a link out of the folder (a bucket's objects are its own files, or
links to files inside it), so a handler cannot be fed a file from elsewhere through a bucket. Only
the file system is read: the index and the events are `BucketSync`'s.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from lambdad.safefiles import UnsafePath, open_inside
from lambdad.triggers.buckets.rules import IgnoreRules

#: Read this much at a time to hash an object (a large file is never held whole).
HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int


class BucketFolder:
    def __init__(self, root: str, ignore: IgnoreRules) -> None:
        """`root` is the folder's real path (links resolved): keys are relative to it."""
        self.root = root
        self._root_slash = root + os.sep
        self.ignore = ignore

    def key_of(self, path: str) -> str | None:
        """The object key of `path`, or None when it is not an object of this bucket."""
        if not path.startswith(self._root_slash):
            return None
        key = path[len(self._root_slash) :]
        if os.sep != "/":
            key = key.replace(os.sep, "/")
        return None if not key or self.ignore(key) else key

    def path_of(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def prefix(self, folder: str) -> str | None:
        """The key prefix of the objects below `folder` ("" for the root), None outside the bucket."""
        rel = os.path.relpath(folder, self.root)
        if rel == ".":
            return ""
        if rel.startswith(".."):
            return None
        return rel.replace(os.sep, "/") + "/"

    def file_state(self, path: str) -> FileState | None:
        """The file's size and mtime if it is an object: a regular file, or a link to one inside the bucket."""
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                target = os.path.realpath(path)
                if not (target + os.sep).startswith(self._root_slash):
                    return None  # links are not followed out of the bucket
                st = os.stat(path)
        except OSError:
            return None
        return FileState(st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None

    def etag(self, path: str) -> str | None:
        """The MD5 of the object's content; None if it is gone or not an object (a link out of the bucket).

        Raises:
            OSError: the file is there but cannot be read (its permissions): the caller says so.
        """
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with open(path, "rb", opener=self._open_object) as f:
                while chunk := f.read(HASH_CHUNK):
                    digest.update(chunk)
        except (UnsafePath, FileNotFoundError):
            return None
        return digest.hexdigest()

    def files(self, folder: str) -> Iterator[str]:
        """Every file below `folder`, not descending into links (they would lead out of the bucket)."""
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from self.files(entry.path)
                else:
                    yield entry.path
            except OSError:
                continue

    def _open_object(self, path: str, _flags: int = 0) -> int:
        """A descriptor on the object's content (an `opener` for `open`), read without following a link
        out of the bucket: a link is followed only to a file inside it, and no component is followed
        after that check (a link swapped in meanwhile is refused, not read).

        Raises:
            UnsafePath: `path` is not an object of this bucket's folder (a link out of it).
        """
        if not path.startswith(self._root_slash):
            raise UnsafePath(f"{path} is not inside {self.root}")
        try:
            return open_inside(self.root, path[len(self._root_slash):].replace(os.sep, "/"))
        except UnsafePath:
            target = os.path.realpath(path)
            if not target.startswith(self._root_slash):
                raise  # links are not followed out of the bucket
            return open_inside(self.root, target[len(self._root_slash):].replace(os.sep, "/"))
