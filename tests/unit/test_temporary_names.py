"""Temporary names of common tools are not objects: one table of patterns, and examples of what
each tool writes (and of ordinary names that must stay objects)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from lambdad.buckets.rules import TEMPORARY_FOLDERS, TEMPORARY_NAMES, IgnoreRules
from lambdad.manifest.model import Bucket

RULES = IgnoreRules.for_bucket(Bucket("b", Path("/b"), ignore=("*.bak", "logs/*")))

#: What each tool writes, as it writes it.
TEMPORARY = [
    ("notes.txt.swp", "vim"), (".notes.txt.swp", "vim"), (".notes.txt.swo", "vim"), (".notes.txt.swx", "vim"),
    (".notes.txt.swa", "vim"), ("4913", "vim"), ("notes.txt~", "vim, emacs, cp --backup"),
    ("notes.txt.~1~", "cp --backup=numbered"), (".#notes.txt", "emacs"), ("#notes.txt#", "emacs"),
    ("notes.txt.kate-swp", "kate"), (".goutputstream-4Q2ZB2", "gedit"),
    ("notes.txt___jb_tmp___", "JetBrains"), ("notes.txt___jb_old___", "JetBrains"),
    (".~lock.sheet.ods#", "LibreOffice"), ("~$port.docx", "Word"),
    (".notes.txt.Xk3pQ9", "rsync"), (".a.aB1cD2", "rsync"), (".archive.tar.gz.000000", "rsync"),
    (".photo.jpg.abcdef", "rsync (all lower case)"), ("sedAb12Cd", "sed -i"),
    ("tmpk2j3_x9a", "Python tempfile"), ("tmpk2j3_x9a.json", "Python tempfile, suffix"),
    ("report.txt.tmp", "atomic writers"), ("report.temp", "atomic writers"),
    ("lambdad.conf.dpkg-new", "dpkg"), ("lambdad.conf.dpkg-tmp", "dpkg"), ("lambdad.conf;5f3a2b1c", "rpm"),
    ("movie.mkv.part", "Firefox"), ("movie.mkv.partial", "downloads"), ("movie.mkv.crdownload", "Chrome"),
    ("movie.mkv.download", "Safari"), ("movie.mkv.aria2", "aria2"),
    (".nfs000000000123abcd00000001", "NFS"), (".fuse_hidden0000001a00000002", "FUSE"),
    (".DS_Store", "macOS"), ("._photo.jpg", "macOS"), ("Thumbs.db", "Windows"), ("desktop.ini", "Windows"),
    (".lambdad-tmp-abc", "lambdad"),
    ("sub/dir/.notes.txt.Xk3pQ9", "rsync, in a folder"), (".~tmp~/notes.txt", "rsync --delay-updates"),
    ("sub/.~tmp~/notes.txt", "rsync --delay-updates"), (".rsync-partial/big.iso", "rsync --partial-dir"),
    ("copy.bak", "the bucket's own pattern"), ("logs/today.txt", "the bucket's own pattern, on the key"),
]

#: Ordinary names, some close to a pattern: objects.
OBJECTS = [
    "notes.txt", "report.pdf", "images/photo.jpg", ".env", ".env.local", ".gitignore", "archive.tar.gz",
    ".notes.txt.Xk3pQ", ".notes.txt.Xk3pQ9z", "notes.txt.Xk3pQ9", ".Xk3pQ9", "sedan", "sediment.txt",
    "tmp", "tmpl.html", "tmp/notes.txt", "template.json", "tmpk2j3_x9.json", "~file", "file;v1",
    "keep.tmpl", "nfs.txt", ".nfsrc", "4913.txt", "data.partition", "swap.txt", "my.~tmp~x/notes.txt",
    "rsync-partial/notes.txt", "logs.txt", "x/logs.txt",
]


@pytest.mark.parametrize(("key", "made_by"), TEMPORARY)
def test_temporary_names_are_not_objects(key, made_by):
    assert RULES(key), f"{key!r} ({made_by}) should not be an object"


@pytest.mark.parametrize("key", OBJECTS)
def test_ordinary_names_are_objects(key):
    assert not RULES(key)


@pytest.mark.parametrize(("glob", "made_by"), TEMPORARY_NAMES)
def test_every_pattern_has_an_example(glob, made_by):
    names = [key.rsplit("/", 1)[-1] for key, _ in TEMPORARY]
    assert any(fnmatch.fnmatchcase(name, glob) for name in names), f"no example of {glob!r} ({made_by})"


@pytest.mark.parametrize(("folder", "made_by"), TEMPORARY_FOLDERS)
def test_every_folder_has_an_example(folder, made_by):
    assert any(f"{folder}/" in key for key, _ in TEMPORARY)


def test_the_table_has_no_duplicates():
    globs = [glob for glob, _ in TEMPORARY_NAMES]
    assert len(globs) == len(set(globs))
