"""Turn what happened to a bucket's files into S3 notifications, by comparing with the index.

The watcher only says where to look ("this file was written", "this folder moved"); the decision
comes from the file as it is now and the index of what was announced. That makes every operation
idempotent: a hint seen twice, or a rescan after the kernel dropped events, announces nothing
twice. The index update and the queued events of one change commit together, so a crash loses
neither (at worst, after a crash, an event is queued again: at least once, as S3).
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lambdad.clock import Clock, filesystem_ns
from lambdad.manifest.model import Bucket, Manifest
from lambdad.payloads.s3 import s3_event, s3_record, sequencer_after
from lambdad.services.asyncinvoke import queue_event
from lambdad.store import Store, objects
from lambdad.store.objects import IndexedObject
from lambdad.triggers.buckets.folder import BucketFolder, FileState
from lambdad.triggers.buckets.rules import IgnoreRules, Subscription, matching, subscriptions

log = logging.getLogger(__name__)

#: A scan leaves alone a file changed this recently: it may still be being written, and its
#: close will be reported anyway. It is looked at again after this long.
RECENT_S = 0.5


@dataclass(frozen=True)
class Announcement:
    """One S3 event lambdad queued (for logs and tests)."""

    event_name: str
    key: str
    functions: tuple[str, ...]


class BucketSync:
    def __init__(
        self,
        bucket: Bucket,
        manifest: Manifest,
        store: Store,
        clock: Clock,
        warn: Callable[[str], None] = log.warning,
        on_created: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.bucket = bucket
        #: Told (request id, path, when the change was seen) of each created object's event, to find which
        #: invocation wrote the file (`RecentInvocations.file_event`; the dispatcher asks before it invokes).
        self._on_created = on_created
        self.name = bucket.name
        self.root = os.path.realpath(bucket.path)
        self.region = manifest.region
        self.ignore = IgnoreRules.for_bucket(bucket)
        self.folder = BucketFolder(self.root, self.ignore)
        self.subs: list[Subscription] = subscriptions(manifest, bucket.name)
        self.store = store
        self.clock = clock
        self._warn = warn
        self.announced: list[Announcement] = []  #: the most recent announcements (bounded)
        self._unannounced: dict[str, None] = {}  #: written files that were gone when we looked
        self._held: list[str] = []  #: files under a weak name, written since the watcher last asked (`take_held`)
        #: When the watcher began (file-system clock): the quiet first scan leaves newer files to their events.
        self.watching_since_ns = 0

    def retarget(self, manifest: Manifest) -> None:
        """A reload changed which functions this bucket notifies: the watch goes on untouched."""
        self.region = manifest.region
        self.subs = subscriptions(manifest, self.name)

    # -- paths --------------------------------------------------------------------------------------

    def key_of(self, path: str) -> str | None:
        """The object key of `path`, or None when it is not an object of this bucket."""
        return self.folder.key_of(path)

    def path_of(self, key: str) -> str:
        return self.folder.path_of(key)

    def _etag(self, path: str) -> str | None:
        try:
            return self.folder.etag(path)
        except OSError as e:
            self._warn(f"bucket {self.name}: cannot read {self.key_of(path) or path} ({e.strerror}); no event")
            return None

    # -- what the watcher reports -------------------------------------------------------------------

    def written(
        self, path: str, event_name: str = "ObjectCreated:Put", key: str | None = None, hold: bool = True
    ) -> bool:
        """A file's write finished (its close), or it arrived whole (moved in).

        `key` announces the file under another key (the name it was written under). A file under a
        weak name is held instead (see `take_held`), unless `hold` is False (its settle is over).

        Returns:
            True when no file is there (gone again already, or not a file): the caller calls
            `deleted` a moment later, as the file may be being replaced (`install` unlinks the
            old one, then writes the new one).
        """
        key = key or self.key_of(path)
        if key is None:
            return False
        state = self.folder.file_state(path)
        if state is None:
            self._unannounced[path] = None  # written, then renamed before we looked: see moved()
            del_oldest(self._unannounced, 1000)
            return True
        if hold and self.ignore.weak(key):
            self._held.append(path)
            return False
        etag = self._etag(path)
        if etag is None:
            return False

        def put(tx) -> None:
            old = objects.get(tx, self.name, key)
            if old is not None and (old.size, old.mtime_ns, old.etag) == (state.size, state.mtime_ns, etag):
                return  # already announced as it is (a rescan got there first)
            self._put(tx, key, state, etag, event_name, old)

        self.store.write(put)
        return False

    def take_held(self) -> list[str]:
        """The files under a weak name written since the last call, for `settled` after a moment: a
        tool's temporary is renamed away by then (and never announced), a file of one's own is not."""
        held, self._held = self._held, []
        return held

    def settled(self, path: str) -> None:
        """A moment after a weak name's close: still there, it is an object as any (one Put, late by
        the settle); renamed away or deleted meanwhile, it was a temporary, and nothing is announced."""
        if self.folder.file_state(path) is not None:
            self.written(path, hold=False)

    def moved(self, src: str, dst: str) -> list[str]:
        """A file renamed inside the bucket: Delete for the old key, Copy for the new one.

        When the old name was never an object (a temporary name, as in an atomic save, or a weak
        name not announced yet), the new one is simply written: one Put, for the final key only (held
        in turn if it is a weak name too). An object renamed onto a temporary or backup name is how
        vim and emacs save (NAME -> NAME~, then a new NAME): its path is returned, for `deleted` a
        moment later, so the save is one Put (the new file's close) and only a file that does not
        come back is a Delete (so is a final name gone again already). An object renamed onto a weak
        name is a rename as any (Delete + Copy), as is one renamed from a weak name announced before.
        """
        src_key, dst_key = self.key_of(src), self.key_of(dst)
        with self.store.reading() as tx:
            old = objects.get(tx, self.name, src_key) if src_key else None
        if dst_key is None:
            return [src] if old is not None else []
        if old is None and src_key is not None and self.ignore.weak(src_key):
            self._unannounced.pop(src, None)  # a tool's temporary, renamed onto its final name
            src_key = None
        if old is None and src_key is not None and self._unannounced.pop(src, False) is None:
            # The old name was written and renamed before we looked: announce both, as S3 would have.
            self.written(dst, "ObjectCreated:Put", key=src_key)
            with self.store.reading() as tx:
                old = objects.get(tx, self.name, src_key)
        if old is None:
            return [dst] if self.written(dst) else []
        state = self.folder.file_state(dst)
        etag = old.etag if state is not None and state.size == old.size else self._etag(dst)
        if state is None or etag is None:
            self.deleted(src)
            return []

        def rename(tx):
            self._delete(tx, old)
            self._put(tx, dst_key, state, etag, "ObjectCreated:Copy")

        self.store.write(rename)
        return []

    def deleted(self, path: str) -> None:
        key = self.key_of(path)
        if key is None:
            return
        with self.store.reading() as tx:
            old = objects.get(tx, self.name, key)
        if old is not None and self.folder.file_state(path) is None:
            self.store.write(lambda tx: self._delete(tx, old))

    def gone_under(self, folder: str) -> None:
        """A folder left the bucket (deleted, or moved out): every object in it is deleted."""
        prefix = self.folder.prefix(folder)
        if prefix is None:
            return
        with self.store.reading() as tx:
            under = objects.under(tx, self.name, prefix)
            gone = [o for o in under if self.folder.file_state(self.path_of(o.key)) is None]
        if gone:
            self.store.write(lambda tx: [self._delete(tx, o) for o in gone])

    def folder_moved(self, src: str, dst: str) -> None:
        """A folder renamed inside the bucket: each file in it is a rename (Delete + Copy)."""
        src_prefix, dst_prefix = self.folder.prefix(src), self.folder.prefix(dst)
        if src_prefix is None or dst_prefix is None:
            return
        with self.store.reading() as tx:
            before = {o.key[len(src_prefix):]: o for o in objects.under(tx, self.name, src_prefix)}
        for path in self.folder.files(dst):
            key = self.key_of(path)
            rest = key[len(dst_prefix):] if key else None
            if rest in before:
                self.moved(self.path_of(src_prefix + rest), path)
                del before[rest]
            elif key:
                self.written(path)
        if before:
            self.store.write(lambda tx: [self._delete(tx, o) for o in before.values()])

    # -- scanning -------------------------------------------------------------------------------------

    def known(self) -> bool:
        """Whether this bucket's folder was indexed before (a new bucket is indexed quietly)."""
        with self.store.reading() as tx:
            return objects.known_bucket(tx, self.name, self.root)

    def mark_known(self) -> None:
        self.store.write(lambda tx: objects.mark_indexed(tx, self.name, self.root, self.clock.time()))

    def arrived(self, folder: str) -> None:
        """A folder moved in from outside: its files arrived whole, announce them at once."""
        self.scan(folder, settled=True)

    def scan(
        self, folder: str | None = None, quiet: bool = False, fs_now_ns: int | None = None, settled: bool = False
    ) -> list[str]:
        """Make the index agree with the folder: Put for new or changed files, Delete for vanished ones.

        With `quiet`, the index is brought up to date without announcing anything (the first start
        of a new bucket). Returns the paths left for later because they changed in the last moments
        (judged on the file system's clock, `fs_now_ns`, the real one unless a test says otherwise),
        or have a weak name: to be looked at again as a close would be.
        """
        fs_now_ns = filesystem_ns() if fs_now_ns is None else fs_now_ns
        folder = folder or self.root
        prefix = self.folder.prefix(folder)
        if prefix is None:
            return []
        with self.store.reading() as tx:
            indexed = {o.key: o for o in objects.under(tx, self.name, prefix)}
        later: list[str] = []
        now_ns = int(self.clock.time() * 1e9)
        for path in self.folder.files(folder):
            key = self.key_of(path)
            if key is None:
                continue
            state = self.folder.file_state(path)
            old = indexed.pop(key, None)
            if state is None or (old and (old.size, old.mtime_ns) == (state.size, state.mtime_ns)):
                continue
            if quiet and self.watching_since_ns and state.mtime_ns >= self.watching_since_ns:
                continue  # written since the watch began: its own event announces it
            if not (quiet or settled) and (fs_now_ns - state.mtime_ns < RECENT_S * 1e9 or self.ignore.weak(key)):
                later.append(path)  # (a weak name may be a tool's temporary about to be renamed: held, as at its close)
                continue
            etag = self._etag(path)
            if etag is None:
                continue
            if quiet:
                obj = IndexedObject(key, state.size, state.mtime_ns, etag, None, sequencer_after(None, now_ns))
                self.store.write(lambda tx, obj=obj: objects.put(tx, self.name, obj))
            else:
                self.store.write(lambda tx, k=key, s=state, e=etag: self._put(tx, k, s, e, "ObjectCreated:Put"))
        vanished = [o for o in indexed.values() if self.folder.file_state(self.path_of(o.key)) is None]
        if vanished:
            if quiet:
                self.store.write(lambda tx: [objects.remove(tx, self.name, o.key) for o in vanished])
            else:
                self.store.write(lambda tx: [self._delete(tx, o) for o in vanished])
        return later

    # -- announcing (inside a store transaction) ----------------------------------------------------

    def _put(
        self, tx, key: str, state: FileState, etag: str, event_name: str, old: IndexedObject | None = None
    ) -> None:
        old = old or objects.get(tx, self.name, key)
        now = self.clock.time()
        version_id = _version_id() if self.bucket.versioning else None
        obj = IndexedObject(key, state.size, state.mtime_ns, etag, version_id,
                            sequencer_after(old.sequencer if old else None, int(now * 1e9)))
        objects.put(tx, self.name, obj)
        self._announce(tx, event_name, obj, now, size=state.size, etag=etag)

    def _delete(self, tx, old: IndexedObject) -> None:
        now = self.clock.time()
        objects.remove(tx, self.name, old.key)
        sequencer = sequencer_after(old.sequencer, int(now * 1e9))
        gone = IndexedObject(old.key, old.size, old.mtime_ns, old.etag, None, sequencer)
        if self.bucket.versioning:
            gone = IndexedObject(old.key, 0, 0, "", _version_id(), sequencer)
            self._announce(tx, "ObjectRemoved:DeleteMarkerCreated", gone, now)
        else:
            self._announce(tx, "ObjectRemoved:Delete", gone, now)

    def _announce(self, tx, event_name: str, obj: IndexedObject, now: float, size: int | None = None,
                  etag: str | None = None) -> None:
        fired = []
        for sub in matching(self.subs, event_name, obj.key):
            record = s3_record(
                event_name=event_name, bucket=self.name, key=obj.key, region=self.region, now=now,
                configuration_id=sub.configuration_id, sequencer=obj.sequencer, size=size, etag=etag,
                version_id=obj.version_id,
            )
            request_id = queue_event(tx, sub.function, json.dumps(s3_event(record)).encode(), now, "s3")
            if self._on_created is not None and event_name.startswith("ObjectCreated:"):
                self._on_created(request_id, self.path_of(obj.key), now)
            fired.append(sub.function)
        self.announced.append(Announcement(event_name, obj.key, tuple(fired)))
        del self.announced[:-1000]


def del_oldest(d: dict, keep: int) -> None:
    """Bound a dict used as an insertion-ordered set."""
    while len(d) > keep:
        del d[next(iter(d))]


def _version_id() -> str:
    """An S3-looking version id: 32 URL-safe characters."""
    return base64.urlsafe_b64encode(os.urandom(24)).decode()


def bucket_root(bucket: Bucket) -> Path:
    """Create the bucket's folder if it does not exist yet."""
    bucket.path.mkdir(parents=True, exist_ok=True)
    return bucket.path
