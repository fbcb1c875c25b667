"""Temporary names of common tools: strong ones are never objects, weak ones (also ordinary names)
are objects whose announcement waits a moment. One table of each, and examples of what each tool
writes, of look-alike names of one's own, and of ordinary names."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from lambdad.daemon.watch import IGNORED_FILES
from lambdad.manifest.model import Bucket
from lambdad.triggers.buckets.rules import TEMPORARY_FOLDERS, TEMPORARY_NAMES, WEAK_NAMES, IgnoreRules

RULES = IgnoreRules.for_bucket(Bucket("b", Path("/b"), ignore=("*.bak", "logs/*")))

#: What each tool writes, as it writes it, under a name no one gives a file of their own: not objects.
STRONG = [
    ("notes.txt.swp", "vim"), (".notes.txt.swp", "vim"), (".notes.txt.swo", "vim"), (".notes.txt.swx", "vim"),
    (".notes.txt.swa", "vim"), ("4913", "vim"), ("notes.txt~", "vim, emacs, cp --backup"),
    ("notes.txt.~1~", "cp --backup=numbered"), (".#notes.txt", "emacs"), ("#notes.txt#", "emacs"),
    ("notes.txt.kate-swp", "kate"), (".goutputstream-4Q2ZB2", "gedit"),
    ("notes.txt___jb_tmp___", "JetBrains"), ("notes.txt___jb_old___", "JetBrains"),
    (".~lock.sheet.ods#", "LibreOffice"), ("~$port.docx", "Word"),
    ("report.txt.tmp", "atomic writers"), ("report.temp", "atomic writers"),
    ("lambdad.conf.dpkg-new", "dpkg"), ("lambdad.conf.dpkg-tmp", "dpkg"),
    ("movie.mkv.part", "Firefox"), ("movie.mkv.partial", "downloads"), ("movie.mkv.crdownload", "Chrome"),
    ("movie.mkv.download", "Safari"), ("movie.mkv.aria2", "aria2"),
    (".nfs000000000123abcd00000001", "NFS"), (".fuse_hidden0000001a00000002", "FUSE"),
    (".DS_Store", "macOS"), ("._photo.jpg", "macOS"), ("Thumbs.db", "Windows"), ("desktop.ini", "Windows"),
    (".lambdad-tmp-abc", "lambdad"),
    (".~tmp~/notes.txt", "rsync --delay-updates"), ("sub/.~tmp~/notes.txt", "rsync --delay-updates"),
    (".rsync-partial/big.iso", "rsync --partial-dir"),
    ("copy.bak", "the bucket's own pattern"), ("logs/today.txt", "the bucket's own pattern, on the key"),
    ("logs/tmp_invoice.pdf", "the bucket's own pattern wins over a weak name"),
]

#: Names tools write temporaries under, that are also ordinary names: objects, but weak.
WEAK = [
    (".notes.txt.Xk3pQ9", "rsync"), (".a.aB1cD2", "rsync"), (".archive.tar.gz.000000", "rsync"),
    (".photo.jpg.abcdef", "rsync (all lower case)"), ("sub/dir/.notes.txt.Xk3pQ9", "rsync, in a folder"),
    ("sedAb12Cd", "sed -i"), ("tmpk2j3_x9a", "Python tempfile"), ("tmpk2j3_x9a.json", "Python tempfile, suffix"),
    ("lambdad.conf;5f3a2b1c", "rpm"),
    (".env.backup", "a file of one's own"), (".env.sample", "a file of one's own"),
    (".cache.sqlite", "a file of one's own"), ("sedentary", "a file of one's own"),
    ("tmp_invoice.pdf", "a file of one's own"), ("tmp_results.csv", "a file of one's own"),
    ("reports/tmp_invoice.pdf", "a file of one's own, in a folder"), ("notes;20261203", "a file of one's own"),
]

#: Ordinary names, some close to a pattern: objects, announced at their close.
OBJECTS = [
    "notes.txt", "report.pdf", "images/photo.jpg", ".env", ".env.local", ".gitignore", "archive.tar.gz",
    ".notes.txt.Xk3pQ", ".notes.txt.Xk3pQ9z", "notes.txt.Xk3pQ9", ".Xk3pQ9", "sedan", "sediment.txt",
    "tmp", "tmpl.html", "tmp/notes.txt", "template.json", "tmpk2j3_x9.json", "tmp_invoice_2026.pdf", "~file",
    "file;v1", "keep.tmpl", "nfs.txt", ".nfsrc", "4913.txt", "data.partition", "swap.txt", "my.~tmp~x/notes.txt",
    "rsync-partial/notes.txt", "logs.txt", "x/logs.txt", "tmp_invoice.pdf/notes.txt",
]


@pytest.mark.parametrize(("key", "made_by"), STRONG)
def test_strong_temporary_names_are_not_objects(key, made_by):
    assert RULES(key), f"{key!r} ({made_by}) should not be an object"


@pytest.mark.parametrize(("key", "made_by"), WEAK)
def test_weak_temporary_names_are_objects_held_a_moment(key, made_by):
    assert not RULES(key), f"{key!r} ({made_by}) should be an object"
    assert RULES.weak(key), f"{key!r} ({made_by}) should be weak"


@pytest.mark.parametrize("key", OBJECTS)
def test_ordinary_names_are_objects_announced_at_once(key):
    assert not RULES(key) and not RULES.weak(key)


@pytest.mark.parametrize(("table", "examples"), [(TEMPORARY_NAMES, STRONG), (WEAK_NAMES, WEAK)],
                         ids=["strong", "weak"])
def test_every_pattern_has_an_example(table, examples):
    names = [key.rsplit("/", 1)[-1] for key, _ in examples]
    for glob, made_by in table:
        assert any(fnmatch.fnmatchcase(name, glob) for name in names), f"no example of {glob!r} ({made_by})"


@pytest.mark.parametrize(("folder", "made_by"), TEMPORARY_FOLDERS)
def test_every_folder_has_an_example(folder, made_by):
    assert any(f"{folder}/" in key for key, _ in STRONG)


def test_the_tables_have_no_duplicates_and_share_no_pattern():
    globs = [glob for glob, _ in TEMPORARY_NAMES + WEAK_NAMES]
    assert len(globs) == len(set(globs))


@pytest.mark.parametrize("name", sorted({
    key.rsplit("/", 1)[-1] for key, _ in STRONG + WEAK
    if any(fnmatch.fnmatchcase(key.rsplit("/", 1)[-1], glob) for glob, _ in TEMPORARY_NAMES + WEAK_NAMES)
}))
def test_code_folders_ignore_strong_and_weak_names_alike(name):
    assert IGNORED_FILES(name)


@pytest.mark.parametrize("name", ["handler.py", "app.js", "requirements.txt", ".env"])
def test_code_folders_see_their_code(name):
    assert not IGNORED_FILES(name)
