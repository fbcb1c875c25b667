"""S3 notification records and the rules around them: key encoding, matching, overlaps, ignores."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model

from lambdad.manifest.model import Bucket, S3Trigger
from lambdad.payloads.s3 import encode_key, s3_event, s3_record, sequencer_after
from lambdad.triggers.buckets.rules import IgnoreRules, event_matches, overlap, trigger_matches

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "events"  # AWS samples
T = 1_700_000_000.123


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("HappyFace.jpg", "HappyFace.jpg"),
        ("images/red flower.jpg", "images/red+flower.jpg"),
        ("a+b.txt", "a%2Bb.txt"),
        ("100%.txt", "100%25.txt"),
        ("café/naïve.txt", "caf%C3%A9/na%C3%AFve.txt"),
        ("deep/a/b/c/d/e.txt", "deep/a/b/c/d/e.txt"),
        ("q?&=#.txt", "q%3F%26%3D%23.txt"),
        ("under_score-dash.dot*star", "under_score-dash.dot*star"),
    ],
)
def test_keys_are_form_encoded_as_s3_does(key, encoded):
    assert encode_key(key) == encoded
    assert unquote_plus(encoded) == key  # what AWS tells handler authors to do


def put_record(**overrides):
    args = dict(event_name="ObjectCreated:Put", bucket="uploads", key="images/my photo.jpg", region="eu-west-1",
                now=T, configuration_id="thumbs", sequencer="0055AED6DCD90281E5", size=1024,
                etag="d41d8cd98f00b204e9800998ecf8427e")
    args.update(overrides)
    return s3_record(**args)


def test_put_record_fields():
    record = put_record()
    assert record["eventVersion"] == "2.1" and record["eventSource"] == "aws:s3"
    assert record["awsRegion"] == "eu-west-1"
    assert record["eventTime"] == "2023-11-14T22:13:20.123Z"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["s3SchemaVersion"] == "1.0"
    assert record["s3"]["configurationId"] == "thumbs"
    assert record["s3"]["bucket"]["name"] == "uploads"
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::uploads"
    assert record["s3"]["object"] == {"key": "images/my+photo.jpg", "size": 1024,
                                      "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}
    assert len(record["responseElements"]["x-amz-request-id"]) == 16
    S3Model(**s3_event(record))


def test_delete_and_versioned_records_validate():
    delete = put_record(event_name="ObjectRemoved:Delete", size=None, etag=None)
    assert delete["s3"]["object"] == {"key": "images/my+photo.jpg", "sequencer": "0055AED6DCD90281E5"}
    marker = put_record(event_name="ObjectRemoved:DeleteMarkerCreated", size=None, etag=None, version_id="v-1")
    assert marker["s3"]["object"]["versionId"] == "v-1"
    versioned = put_record(version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko")
    for record in (delete, marker, versioned):
        S3Model(**s3_event(record))


def test_shape_matches_the_reference_sample():
    sample = json.loads((REFERENCE / "s3-put.json").read_text())["Records"][0]
    ours = put_record()

    def shape(d):
        return {k: shape(v) if isinstance(v, dict) else type(v).__name__ for k, v in d.items()}

    sample_shape, our_shape = shape(sample), shape(ours)
    sample_shape["s3"]["object"].pop("versionId", None)  # only on versioned buckets
    assert our_shape == sample_shape


def test_sequencers_grow_per_key():
    first = sequencer_after(None, 1_000)
    assert sequencer_after(first, 500) > first  # even if the clock went back
    assert sequencer_after(first, 2_000) > sequencer_after(first, 1_500)
    assert len(first) == 18


@pytest.mark.parametrize(
    ("configured", "name", "matches"),
    [
        ("s3:ObjectCreated:*", "ObjectCreated:Put", True),
        ("s3:ObjectCreated:*", "ObjectCreated:Copy", True),
        ("s3:ObjectCreated:*", "ObjectRemoved:Delete", False),
        ("s3:ObjectCreated:Put", "ObjectCreated:Put", True),
        ("s3:ObjectCreated:Put", "ObjectCreated:Copy", False),
        ("s3:ObjectRemoved:*", "ObjectRemoved:DeleteMarkerCreated", True),
        ("s3:ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated", False),
    ],
)
def test_event_matching(configured, name, matches):
    assert event_matches(configured, name) is matches


@pytest.mark.parametrize(
    ("prefix", "suffix", "key", "matches"),
    [
        ("images/", ".jpg", "images/a.jpg", True),
        ("images/", ".jpg", "images/a.JPG", False),  # case-sensitive
        ("images/", ".jpg", "Images/a.jpg", False),
        ("", "", "anything", True),
        ("images/", "", "images/sub/deep.png", True),
        ("", ".jpg", "a.jpg.txt", False),
    ],
)
def test_prefix_and_suffix_filters(prefix, suffix, key, matches):
    trigger = S3Trigger("uploads", ("s3:ObjectCreated:*",), prefix, suffix)
    assert trigger_matches(trigger, "ObjectCreated:Put", key) is matches


@pytest.mark.parametrize(
    ("a", "b", "conflict"),
    [
        ((("s3:ObjectCreated:*",), "", ""), (("s3:ObjectCreated:Put",), "", ""), True),
        ((("s3:ObjectCreated:*",), "images/", ""), (("s3:ObjectCreated:*",), "docs/", ""), False),
        ((("s3:ObjectCreated:*",), "images/", ".jpg"), (("s3:ObjectCreated:*",), "images/", ".png"), False),
        ((("s3:ObjectCreated:*",), "images/", "jpg"), (("s3:ObjectCreated:*",), "", ".jpg"), True),
        ((("s3:ObjectCreated:*",), "a/", ""), (("s3:ObjectRemoved:*",), "a/", ""), False),
        ((("s3:ObjectCreated:Put",), "", ""), (("s3:ObjectCreated:Copy",), "", ""), False),
        ((("s3:ObjectRemoved:*",), "x", ""), (("s3:ObjectRemoved:Delete",), "x/y", ""), True),
    ],
)
def test_overlapping_configurations(a, b, conflict):
    ta = S3Trigger("b", a[0], a[1], a[2])
    tb = S3Trigger("b", b[0], b[1], b[2])
    assert overlap(ta, tb) is conflict and overlap(tb, ta) is conflict


@pytest.mark.parametrize(
    ("key", "ignored"),
    [
        ("notes.txt", False),
        (".notes.txt.swp", True),
        ("notes.txt~", True),
        (".#notes.txt", True),
        ("4913", True),
        ("dir/.DS_Store", True),
        ("download.part", True),
        ("report.tmp", True),
        ("data/file.partial", True),
        ("custom.bak", True),  # the bucket's own pattern
        ("keep.tmpl", False),
    ],
)
def test_ignored_names(key, ignored):
    rules = IgnoreRules.for_bucket(Bucket("b", Path("/b"), ignore=("*.bak",)))
    assert rules(key) is ignored
