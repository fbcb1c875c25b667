"""YAML syntax errors are reported where the fix goes: the unclosed bracket, the tab, as well as where reading stopped."""

from __future__ import annotations

import pytest
import yaml

from lambdad.manifest.yamlmarks import load_yaml

SEED_LIKE = """\
version: 1
functions:
  resize:
    handler: app.handler
    events:
      - api: {listener: web, route: "GET /x"
  other:
    handler: app.handler
"""

CASES = [
    pytest.param(SEED_LIKE, [
        "lambdad.yaml:6:14: YAML syntax error: this '{' is never closed (reading stopped at line 7, column 3)",
        "lambdad.yaml:7:3: YAML syntax error: did not find expected ',' or '}' (the '{' at line 6, column 14 is "
        "never closed)",
    ], id="unclosed-brace"),
    pytest.param("a: [1, 2\nb: 3\n", [
        "lambdad.yaml:1:4: YAML syntax error: this '[' is never closed (reading stopped at line 2, column 2)",
        "lambdad.yaml:2:2: YAML syntax error: did not find expected ',' or ']' (the '[' at line 1, column 4 is "
        "never closed)",
    ], id="unclosed-bracket"),
    pytest.param('a: "abc\nb: 3\n', [
        "lambdad.yaml:1:4: YAML syntax error: this quote '\"' is never closed (reading stopped at line 3, column 1)",
        "lambdad.yaml:3:1: YAML syntax error: found unexpected end of stream (the quote '\"' at line 1, column 4 "
        "is never closed)",
    ], id="unclosed-quote"),
    pytest.param("a:\n\tb: 1\n", [
        "lambdad.yaml:2:1: YAML syntax error: found a tab character where a key or value should start: tabs are "
        "not allowed for indentation in YAML: use spaces",
    ], id="tab-indent"),
    pytest.param("a: 1\n\tb: 2\n", [
        "lambdad.yaml:2:1: YAML syntax error: found a tab character that breaks the indentation: tabs are not "
        "allowed for indentation in YAML: use spaces",
    ], id="tab-after-value"),
    pytest.param("a:\n  b: 1\n c: 2\n", [
        "lambdad.yaml:1:1: YAML syntax error: the mapping that starts here cannot be read to its end (reading "
        "stopped at line 3, column 2; check the indentation: the keys of one mapping, and the items of one list, "
        "line up)",
        "lambdad.yaml:3:2: YAML syntax error: did not find expected key (in the mapping that starts at line 1, "
        "column 1)",
    ], id="bad-indent"),
    pytest.param("a:\n  - 1\n  b: 2\n", [
        "lambdad.yaml:2:3: YAML syntax error: the list that starts here cannot be read to its end (reading "
        "stopped at line 3, column 3; check the indentation: the keys of one mapping, and the items of one list, "
        "line up)",
        "lambdad.yaml:3:3: YAML syntax error: did not find expected '-' indicator (in the list that starts at "
        "line 2, column 3)",
    ], id="key-inside-a-list"),
    pytest.param("a: b: c\n", [
        "lambdad.yaml:1:5: YAML syntax error: mapping values are not allowed in this context: a ': ' inside a "
        "plain value (quote the value), or a line indented too far",
    ], id="colon-in-plain-value"),
    pytest.param("a: *nope\n", ["lambdad.yaml:1:4: YAML syntax error: found undefined alias '*nope'"],
                 id="undefined-alias"),
    pytest.param("a: &x 1\nb: &x 2\n", ["lambdad.yaml:2:4: YAML syntax error: duplicate anchor '&x' (first at "
                                        "line 1, column 4)"], id="duplicate-anchor"),
    pytest.param("a: 1\nb: 2\na: 3\n", ["lambdad.yaml:3:1: a: duplicate key 'a' (first at line 1, column 1)"],
                 id="duplicate-key"),
]


@pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="wording is libyaml's")
@pytest.mark.parametrize(("text", "expected"), CASES)
def test_syntax_errors_are_reported_where_to_fix_them(text: str, expected: list[str]):
    _, _, problems = load_yaml(text, "lambdad.yaml", {})
    assert [str(p) for p in sorted(problems, key=lambda p: p.sort_key())] == expected
