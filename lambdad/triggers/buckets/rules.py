"""Which files are objects, and which triggers an object event fires: pure matching rules."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from lambdad.manifest.model import Bucket, Manifest, S3Trigger

_ALNUM = "[A-Za-z0-9]"  # (mkstemp's letters)
_PYNAME = "[a-z0-9_]"  # (Python tempfile's letters)

#: Names tools give a file while they write it (then rename it onto its final name), or beside it
#: (swap files, locks, backups), and that no one gives a file of their own: never objects, in any
#: bucket, so an atomic save is one `ObjectCreated:Put` for the final key. Globs on the file's name,
#: each with what makes such names.
TEMPORARY_NAMES: tuple[tuple[str, str], ...] = (
    ("*.swp", "vim, neovim and nano swap files"),
    ("*.swo", "vim swap files"),
    ("*.swx", "vim swap files"),
    (".*.sw?", "vim swap files (.NAME.swa ... .NAME.swz)"),
    ("4913", "vim: its probe that the folder is writable"),
    ("*~", "backups: vim, emacs, nano, gedit (NAME~); cp, mv, install and ln --backup (NAME~, NAME.~1~)"),
    (".#*", "emacs lock links (.#NAME)"),
    ("#*#", "emacs auto-save files (#NAME#)"),
    ("*.kate-swp", "Kate swap files"),
    (".goutputstream-*", "GNOME (GIO) atomic saves: gedit, Nautilus"),
    ("*___jb_tmp___", "JetBrains IDEs' safe write (NAME___jb_tmp___)"),
    ("*___jb_old___", "JetBrains IDEs' safe write (NAME___jb_old___)"),
    (".~lock.*#", "LibreOffice lock files"),
    ("~$*", "Microsoft Office owner files (~$NAME.docx)"),
    ("*.tmp", "temporary files: pip, Syncthing, Office, many atomic writers (NAME.tmp)"),
    ("*.temp", "temporary files"),
    ("*.dpkg-new", "dpkg, while it unpacks a file"),
    ("*.dpkg-tmp", "dpkg, while it backs a file up"),
    ("*.part", "partial downloads: Firefox, Transmission, KDE"),
    ("*.partial", "partial downloads"),
    ("*.crdownload", "Chrome and Edge downloads in progress"),
    ("*.download", "Safari downloads in progress"),
    ("*.aria2", "aria2's control files"),
    (".nfs" + "[0-9a-f]" * 8 + "*", "NFS: a file deleted while open (.nfsXXXXXXXX...)"),
    (".fuse_hidden*", "FUSE: a file deleted while open"),
    (".DS_Store", "macOS folder settings"),
    ("._*", "macOS resource forks (AppleDouble)"),
    ("Thumbs.db", "Windows thumbnails"),
    ("desktop.ini", "Windows folder settings"),
    (".lambdad-tmp-*", "lambdad's own atomic writes"),
)
#: Folders tools write files in before moving them into place: files below them are not objects.
TEMPORARY_FOLDERS: tuple[tuple[str, str], ...] = (
    (".~tmp~", "rsync --delay-updates"),
    (".rsync-partial", "rsync --partial-dir default"),
)
#: Names tools give a file while they write it that are also ordinary names (`.env.backup` is
#: rsync's `.NAME.XXXXXX`, `sedentary` sed's, `tmp_invoice.pdf` Python's): objects, but announced only
#: once such a file has stayed a moment (the watcher's `WEAK_SETTLE_S`). The tools rename theirs away
#: at once, and that rename is the one `ObjectCreated:Put` for the final key; a file of one's own stays,
#: and is announced as any other.
WEAK_NAMES: tuple[tuple[str, str], ...] = (
    (".?*." + _ALNUM * 6, "rsync: .NAME.XXXXXX while a file is transferred (6 letters or digits); also .env.backup"),
    ("sed" + _ALNUM * 6, "GNU sed -i (sedXXXXXX); also sedentary"),
    ("tmp" + _PYNAME * 8, "Python tempfile in the folder (tmpXXXXXXXX), then os.replace; also tmp_invoice"),
    ("tmp" + _PYNAME * 8 + ".*", "Python tempfile with a suffix (tmpXXXXXXXX.json); also tmp_invoice.pdf"),
    ("*;" + "[0-9a-f]" * 8, "rpm, while it unpacks a file (NAME;5f3a2b1c); also notes;20261203"),
)
DEFAULT_IGNORE = tuple(glob for glob, _ in TEMPORARY_NAMES)
WEAK_IGNORE = tuple(glob for glob, _ in WEAK_NAMES)


def _matcher(patterns: tuple[str, ...]) -> Callable[[str], object]:
    """One compiled regex for all the globs (a match object, or None)."""
    if not patterns:
        return lambda _text: None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match


class IgnoreRules:
    """Glob patterns matched against a file's name and against its whole key (one compiled regex);
    `names` only against the name, and `folders` against the key's folders. A file with a `weak`
    name (matched on the name) is still an object: `weak()` tells it apart."""

    def __init__(self, patterns: tuple[str, ...], names: tuple[str, ...] = (), folders: tuple[str, ...] = (),
                 weak: tuple[str, ...] = ()) -> None:
        self.patterns = patterns
        self._match = _matcher(patterns)
        self._name = _matcher(names)
        self._weak = _matcher(weak)
        self._folders = frozenset(folders)
        self._count = len(patterns) + len(names) + len(folders) + len(weak)

    @classmethod
    def for_bucket(cls, bucket: Bucket) -> IgnoreRules:
        return cls(tuple(bucket.ignore), DEFAULT_IGNORE, tuple(name for name, _ in TEMPORARY_FOLDERS), WEAK_IGNORE)

    def __call__(self, key: str) -> bool:
        """True if the file at `key` is not an object: its name, or the key, matches a pattern."""
        folders, _, name = key.rpartition("/")
        if self._name(name) or self._match(name) or self._match(key):
            return True
        return bool(folders and self._folders and not self._folders.isdisjoint(folders.split("/")))

    def weak(self, key: str) -> bool:
        """True if the object at `key` has a name tools also write temporaries under (`WEAK_NAMES`)."""
        return bool(self._weak(key.rpartition("/")[2]))

    def __repr__(self) -> str:
        return f"IgnoreRules({self._count} patterns)"


def event_matches(configured: str, event_name: str) -> bool:
    """`s3:ObjectCreated:*` matches `ObjectCreated:Put`; configured names keep the `s3:` prefix."""
    configured = configured.removeprefix("s3:")
    if configured.endswith(":*"):
        return event_name.startswith(configured[:-1])
    return configured == event_name


def trigger_matches(trigger: S3Trigger, event_name: str, key: str) -> bool:
    """Prefix and suffix match the raw key, case-sensitively."""
    return (
        any(event_matches(e, event_name) for e in trigger.events)
        and key.startswith(trigger.prefix)
        and key.endswith(trigger.suffix)
    )


@dataclass(frozen=True)
class Subscription:
    function: str
    trigger: S3Trigger

    @property
    def configuration_id(self) -> str:
        """The trigger's `id`, or a stable one derived from the function and the trigger's place."""
        if self.trigger.id:
            return self.trigger.id
        index = self.trigger.where[-2] if len(self.trigger.where) >= 2 else 0
        return f"lambdad-{self.function}-{index}"


def subscriptions(manifest: Manifest, bucket: str) -> list[Subscription]:
    return [
        Subscription(fn.name, t)
        for fn in manifest.functions.values()
        for t in fn.events
        if isinstance(t, S3Trigger) and t.bucket == bucket
    ]


def matching(subs: Iterable[Subscription], event_name: str, key: str) -> Iterator[Subscription]:
    return (s for s in subs if trigger_matches(s.trigger, event_name, key))


def _types_intersect(a: Iterable[str], b: Iterable[str]) -> bool:
    for x in a:
        for y in b:
            x1, y1 = x.removeprefix("s3:"), y.removeprefix("s3:")
            if x1 == y1 or event_matches(x, y1.replace("*", "")) or event_matches(y, x1.replace("*", "")):
                return True
    return False


def overlap(a: S3Trigger, b: S3Trigger) -> bool:
    """S3's rule: two configurations conflict when their event types intersect and their prefixes
    and their suffixes both overlap (one is a prefix, resp. suffix, of the other)."""
    prefixes = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
    suffixes = a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)
    return prefixes and suffixes and _types_intersect(a.events, b.events)
