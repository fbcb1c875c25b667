from lambdad.manifest.problems import Mark
from lambdad.manifest.yamlmarks import load_yaml


def test_records_value_and_key_marks():
    data, marks, problems = load_yaml("a:\n  b: 1\n  c: [x, y]\n", "m.yaml", {})
    assert problems == []
    assert data == {"a": {"b": 1, "c": ["x", "y"]}}
    assert marks.value(("a", "b")) == Mark(2, 6)
    assert marks.key(("a", "b")) == Mark(2, 3)
    assert marks.value(("a", "c", 1)) == Mark(3, 10)
    # unknown paths fall back to the nearest ancestor
    assert marks.value(("a", "zzz", 3)) == Mark(2, 3)


def test_keys_stay_strings():
    data, _, _ = load_yaml("on: 1\n1: 2\nyes: 3\n", "m.yaml", {})
    assert data == {"on": 1, "1": 2, "yes": 3}


def test_duplicate_keys_are_reported():
    _, _, problems = load_yaml("a: 1\nb: 2\na: 3\n", "m.yaml", {})
    assert [str(p) for p in problems] == ["m.yaml:3:1: a: duplicate key 'a' (first at line 1, column 1)"]


def test_env_expansion_and_retyping():
    text = 'n: ${N}\nd: ${MISSING:-7}\nq: "${N}"\nesc: $${N}\ns: pre-${N}-post\n'
    data, _, problems = load_yaml(text, "m.yaml", {"N": "42"})
    assert problems == []
    assert data == {"n": 42, "d": 7, "q": "42", "esc": "${N}", "s": "pre-42-post"}


def test_unset_env_var_is_a_problem_with_its_line():
    _, _, problems = load_yaml("a: 1\nb: ${NOPE}\n", "m.yaml", {})
    assert [str(p) for p in problems] == [
        "m.yaml:2:4: b: environment variable 'NOPE' is not set (use ${NOPE:-default})"
    ]


def test_syntax_error_names_the_line():
    data, _, problems = load_yaml("a: 1\nb: [1, 2\nc: 3\n", "m.yaml", {})
    assert data is None
    assert [str(p)[:9] for p in problems] == ["m.yaml:2:", "m.yaml:3:"]  # where it opens, where reading stopped
    assert all("YAML syntax error" in str(p) for p in problems)


def test_python_tags_are_not_constructed():
    _, _, problems = load_yaml("a: !!python/object/apply:os.system ['true']\n", "m.yaml", {})
    assert len(problems) == 1
    assert "python/object/apply" in problems[0].message and "not allowed" in problems[0].message


def test_merge_keys_work():
    data, _, problems = load_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "m.yaml", {})
    assert problems == []
    assert data["other"] == {"x": 1, "y": 2}


def test_unknown_scalar_tags_are_not_constructed():
    _, _, problems = load_yaml("a: !!python/name:os.system\n", "m.yaml", {})
    assert len(problems) == 1
    assert problems[0].path == ("a",)


def test_alias_bombs_are_refused_quickly():
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    data, _, problems = load_yaml("\n".join(levels) + "\n", "m.yaml", {})
    assert data is None
    assert [p.message for p in problems] == ["the manifest expands to more than 100000 values (nested YAML aliases?)"]
