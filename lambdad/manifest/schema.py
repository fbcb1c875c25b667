"""First validation layer: the JSON Schema in `schemas/`, with messages a person can act on.

jsonschema's own messages are precise but generic ("Additional properties are not allowed"); this
turns each error into one `Problem` located at the offending key or value, with "did you mean"
for misspelled keys and plain wording for durations and handlers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from lambdad.manifest.problems import DocPath, Marks, Problem, did_you_mean
from lambdad.shown import shown

#: The schema in a source checkout (and an editable install); wheels carry it as `lambdad.schemas`.
_CHECKOUT_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "manifest.schema.json"


@cache
def manifest_schema() -> dict[str, Any]:
    if _CHECKOUT_SCHEMA.is_file():
        text = _CHECKOUT_SCHEMA.read_text(encoding="utf-8")
    else:
        text = resources.files("lambdad.schemas").joinpath("manifest.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _is_number(_checker: object, instance: object) -> bool:
    """JSON numbers: finite. YAML has `.nan` and `.inf`, which no setting can mean."""
    if isinstance(instance, bool):
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and math.isfinite(instance))


def _is_integer(_checker: object, instance: object) -> bool:
    """Integers as written: `256.0` is a float in YAML, and would reach the model as one (jsonschema's
    own check accepts it). `true` is an int in Python, but not an integer in JSON."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many({"number": _is_number, "integer": _is_integer}),
)


@cache
def _validator() -> Draft202012Validator:
    return _Validator(manifest_schema())


def schema_problems(data: Any, marks: Marks, file: str) -> list[Problem]:
    problems: dict[tuple[DocPath, str], Problem] = {}
    for error in _validator().iter_errors(data):
        for problem in _explain(error, marks, file):
            problems.setdefault((problem.path, problem.message), problem)
    return list(problems.values())


_KIND_HINTS = {
    "duration": "is not a duration: use seconds (90) or a string such as 90s, 5m, 6h",
    "path": "is not a path: it contains a NUL character",
    "host": "is not a host name or IP address",
    "handler": "is not a handler: use module.function, for example app.handler",
    "env-name": "is not a valid environment variable name: letters, digits and _, starting with a letter, "
    "at least 2 characters",
}


def _explain(error: ValidationError, marks: Marks, file: str) -> Iterator[Problem]:
    path: DocPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = schema.get("x-kind")

    def at_value(message: str, where: DocPath = path) -> Problem:
        return Problem(file, marks.value(where), where, message)

    def at_key(message: str, where: DocPath) -> Problem:
        return Problem(file, marks.key(where), where, message)

    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = schema.get("properties", {})
        for key in error.instance:
            if key not in known:
                yield at_key(f"unknown key {key!r}{did_you_mean(key, known)}", (*path, key))
    elif error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield at_value(f"missing required key {missing!r}")
    elif "propertyNames" in error.schema_path:
        # jsonschema reports a bad key against the mapping itself; point at the key instead.
        name = error.instance
        hint = _KIND_HINTS.get(kind or "", f"is not allowed ({error.message})")
        yield at_key(f"{name!r} {hint}", (*path, name))
    elif kind in _KIND_HINTS and error.validator == "pattern":
        yield at_value(f"{shown(error.instance)} {_KIND_HINTS[kind]}")
    elif error.validator in ("minProperties", "maxProperties") and "properties" in schema:
        options = ", ".join(schema["properties"])
        yield at_value(f"give exactly one of: {options}")
    elif error.validator == "const":
        yield at_value(f"must be {error.validator_value!r}, not {error.instance!r}")
    elif error.validator == "enum" and isinstance(error.instance, str):
        options = ", ".join(map(str, error.validator_value))
        hint = did_you_mean(error.instance, error.validator_value)
        yield at_value(f"{error.instance!r} is not one of: {options}{hint}")
    elif error.validator in ("type", "anyOf") and _non_finite(error.instance):
        yield at_value(f"{error.instance!r} is not a finite number")
    elif error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        if isinstance(error.instance, float) and "integer" in expected and error.instance.is_integer():
            yield at_value(f"expected {expected}, got number {error.instance!r} (write {int(error.instance)})")
        else:
            yield at_value(f"expected {expected}, got {_json_type(error.instance)} {shown(error.instance)}")
    elif error.validator in _BOUNDS:
        yield at_value(f"{shown(error.instance)} {_BOUNDS[error.validator]} {error.validator_value!r}")
    else:
        yield at_value(error.message if len(error.message) <= 200 else error.message[:197] + "...")


#: jsonschema's own wording, with the value shortened (a 300-digit number is not worth printing).
_BOUNDS = {
    "minimum": "is less than the minimum of",
    "maximum": "is greater than the maximum of",
    "exclusiveMinimum": "is less than or equal to the minimum of",
    "exclusiveMaximum": "is greater than or equal to the maximum of",
}


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )
