"""Writes into a bucket or folder that cannot land outside it, whatever links are inside.

A symbolic link inside a bucket (`aws -> /tmp/elsewhere`) would carry a path-based write out of
the bucket. So every component under the root is opened relative to its parent's descriptor with
`O_NOFOLLOW`, missing folders are made relative to it, and the file is written under a temporary
name and renamed into place in that same folder: a watcher never sees half a file, and no link,
dangling or not, is ever followed. The root itself may be a link: the user chose it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from lambdad.errors import UnsafePath

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

__all__ = ["UnsafePath", "open_inside", "relative_parts", "write_inside"]


def relative_parts(relative: str) -> list[str]:
    """The components of a relative name, `a/b/c`; anything that could leave the root is refused.

    Raises:
        UnsafePath: for an empty or absolute name, `.`, `..` or empty components, NUL bytes.
    """
    if "\0" in relative:
        raise UnsafePath(f"{relative!r}: a name must not contain a NUL byte")
    if not relative or relative.startswith("/"):
        raise UnsafePath(f"{relative!r}: a name must be relative and not empty")
    parts = relative.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePath(f"{relative!r}: {part or 'an empty component'!r} is not allowed in a name")
    return parts


def write_inside(root: Path, relative: str, content: bytes) -> Path:
    """Write `content` to `root/relative`, replacing a file there, never following a link under `root`.

    Returns the path written. Missing folders under `root` (and `root` itself) are created.

    Raises:
        UnsafePath: the name could leave `root`, or a component under it is a link (or the final
            name is): a write that can never succeed as things are, so the caller should not retry it
            as if the disk were full.
        OSError: the file system refused (permissions, a full disk): worth retrying.
    """
    parts = relative_parts(relative)
    if "\0" in str(root):  # (an outbox written before manifests refused such paths)
        raise UnsafePath(f"{str(root)!r}: a folder's name must not contain a NUL byte")
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the root may be a link
    try:
        for i, name in enumerate(parts[:-1]):
            child = _open_folder(fd, name, "/".join(parts[: i + 1]), root)
            os.close(fd)
            fd = child
        _write_file(fd, parts[-1], content, relative, root)
    finally:
        os.close(fd)
    return root.joinpath(*parts)


def open_inside(root: Path | str, relative: str) -> int:
    """A descriptor for reading `root/relative`, opened without following any link under `root`.

    Raises:
        UnsafePath: the name could leave `root`, or a component under it is a link.
        OSError: it does not exist, or cannot be read.
    """
    parts = relative_parts(relative)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in parts[:-1]:
            child = _no_follow(fd, name, _DIR_FLAGS, root)
            os.close(fd)
            fd = child
        return _no_follow(fd, parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, root)
    finally:
        os.close(fd)


def _no_follow(parent: int, name: str, flags: int, root: Path | str) -> int:
    try:
        return os.open(name, flags, dir_fd=parent)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(parent, name):
            raise UnsafePath(f"{name!r} under {root} is a symbolic link") from None
        raise


def _open_folder(parent: int, name: str, shown: str, root: Path) -> int:
    for _ in range(3):  # another writer may create (or remove) it meanwhile
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(parent, name):
                raise UnsafePath(f"{root / shown} is a symbolic link: lambdad does not write through links "
                                 f"inside {root}") from None
            raise
    raise OSError(errno.EAGAIN, "the folder kept changing", str(root / shown))


def _write_file(folder: int, name: str, content: bytes, relative: str, root: Path) -> None:
    if _is_link(folder, name):
        raise UnsafePath(f"{root / relative} is a symbolic link: lambdad does not replace links inside {root}")
    tmp = f".{name[:64]}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, _FILE_FLAGS, 0o666, dir_fd=folder)
    try:
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)  # replaces a link itself, never its target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder)
        raise


def _is_link(folder: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=folder).st_mode)
    except OSError:
        return False
