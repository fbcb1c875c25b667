"""Before the daemon opens its store: damage SQLite would pass over in silence is set aside and said.

- A store file of 0 bytes in a state folder that was used before (a -wal beside it, logs, a lock
  file) lost everything: SQLite would start a fresh store over it, and drop the -wal. The files are
  renamed `NAME.damaged-<UTC time>` instead, kept for whoever wants to look.
- A write-ahead log whose header or committed frames do not check out (a torn or overwritten
  file): SQLite drops the WAL, or everything from the first bad frame on, including transactions
  that were committed. A copy is kept as `store.sqlite3-wal.damaged-<UTC time>`; SQLite then keeps
  what it can read.

The WAL format (https://www.sqlite.org/fileformat2.html#walformat): a 32-byte header (magic,
version, page size, checkpoint sequence, two salts, a checksum of the first 24 bytes), then frames
of a 24-byte header (page number, database size after a commit or 0, the salts, a cumulative
checksum) and one page each. SQLite stops at the first frame whose salts or checksum do not match;
frames of an older generation (other salts) after it are normal, frames of the current one are not.
"""

from __future__ import annotations

import os
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from lambdad.private import FILE_MODE

WAL_MAGIC = (0x377F0682, 0x377F0683)  #: checksums of little-endian words, of big-endian words
WAL_VERSION = 3007000
WAL_HEADER = 32
FRAME_HEADER = 24


@dataclass(frozen=True)
class WalCheck:
    frames: int  #: whole frames in the file
    valid: int  #: frames SQLite will read (up to the last good commit)
    lost_commits: int  #: commits of the current generation SQLite will drop

    @property
    def damaged(self) -> bool:
        return self.lost_commits > 0


def _checksum(data: bytes, big_endian: bool, s0: int = 0, s1: int = 0) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for x0, x1 in zip(words[0::2], words[1::2], strict=True):
        s0 = (s0 + x0 + s1) & 0xFFFFFFFF
        s1 = (s1 + x1 + s0) & 0xFFFFFFFF
    return s0, s1


def check_wal(data: bytes) -> WalCheck:
    """What SQLite will make of a write-ahead log's bytes."""
    if len(data) < WAL_HEADER:
        return WalCheck(0, 0, 0)
    magic, version, page_size, _, salt1, salt2, c1, c2 = struct.unpack(">8I", data[:WAL_HEADER])
    frame_size = FRAME_HEADER + page_size
    frames = (len(data) - WAL_HEADER) // frame_size if page_size else 0
    big = magic == WAL_MAGIC[1]
    if (magic not in WAL_MAGIC or version != WAL_VERSION or page_size < 512 or page_size & (page_size - 1)
            or _checksum(data[:24], big) != (c1, c2)):
        commits = sum(1 for i in range(frames) if _frame_commit(data, i, frame_size))
        return WalCheck(frames, 0, commits)  # the whole log is dropped: each commit frame in it is lost
    s0, s1 = c1, c2
    valid = 0
    for i in range(frames):
        at = WAL_HEADER + i * frame_size
        _, _, f_salt1, f_salt2, f1, f2 = struct.unpack(">6I", data[at:at + FRAME_HEADER])
        if (f_salt1, f_salt2) != (salt1, salt2):
            break
        s0, s1 = _checksum(data[at:at + 8] + data[at + FRAME_HEADER:at + frame_size], big, s0, s1)
        if (s0, s1) != (f1, f2):
            break
        valid = i + 1
    lost = 0
    for i in range(valid, frames):  # after the break: commit frames of this generation are committed data lost
        at = WAL_HEADER + i * frame_size
        _, db_size, f_salt1, f_salt2 = struct.unpack(">4I", data[at:at + 16])
        if (f_salt1, f_salt2) == (salt1, salt2) and db_size:
            lost += 1
    return WalCheck(frames, valid, lost)


def _frame_commit(data: bytes, i: int, frame_size: int) -> bool:
    at = WAL_HEADER + i * frame_size
    return struct.unpack(">I", data[at + 4:at + 8])[0] != 0


def stamp(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def set_aside_damage(store: Path, now: float, used_before: bool = False) -> list[str]:
    """Look at the store's files before SQLite does; keep damaged ones aside. Returns what to say.
    `used_before`: a daemon ran on this state folder before (else the folder's own files tell)."""
    wal, shm = Path(f"{store}-wal"), Path(f"{store}-shm")
    try:
        size = store.stat().st_size
    except FileNotFoundError:
        return []
    suffix = f".damaged-{stamp(now)}"
    folder = store.parent
    logs = folder / "logs"
    used_before = used_before or wal.exists() or (folder / "running.yaml").exists() or (
        logs.is_dir() and any(logs.iterdir()))
    if size == 0 and used_before:
        kept = []
        for path in (store, wal, shm):
            if path.exists():
                os.replace(path, path.with_name(path.name + suffix))
                kept.append(path.name + suffix)
        return [f"the store {store} was empty (0 bytes) although this state folder was used before: its queued "
                f"events, messages and indexes are lost; starting with a fresh store (the damaged files are kept "
                f"in {folder}: {', '.join(kept)})"]
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return []
    check = check_wal(data)
    if not check.damaged:
        return []
    copy = wal.with_name(wal.name + suffix)
    shutil.copyfile(wal, copy)
    os.chmod(copy, FILE_MODE)
    return [f"the store's write-ahead log {wal} is damaged: {check.lost_commits} committed transaction(s) in it "
            f"cannot be read and are lost (SQLite keeps the {check.valid} good frame(s) before the damage); a copy "
            f"of the log is kept as {copy}"]
