"""One validator for what arrives as JSON: tool calls, guided answers and settings.

A pydantic model declares the shape once; from it come the JSON schema a model is shown
and the check of what it sent back. Guided mode builds its answer schemas per step (the
lines a fix may pick); `fits` checks an answer against one through a model made from it.
Errors are one line a model (or a user) can act on, in the words of the schema, not
pydantic's.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

M = TypeVar("M", bound=BaseModel)


class Invalid(ValueError):
    """The value does not fit its schema; the message says how."""


class Strict(BaseModel):
    """A base for shapes that take exactly their fields, with JSON's types (no "5" for 5)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the plain form small models and text mode read best:
    no titles, and an optional field shown with its own type rather than `anyOf` null."""
    return copy.deepcopy(_schema(model))


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:  # pydantic takes ms to build one
    raw = model.model_json_schema()
    defs = raw.get("$defs", {})
    properties = {name: _plain(spec, defs) for name, spec in raw.get("properties", {}).items()}
    if "reason" in properties:  # the shared optional field reads best after the tool's own
        properties["reason"] = properties.pop("reason")
    return {
        "type": "object",
        "properties": properties,
        "required": list(raw.get("required", [])),
        "additionalProperties": False,
    }


def validate(model: type[M], value: object, noun: str = "argument") -> M:
    """`value` as `model`, or `Invalid`. A null counts as leaving an optional field out
    (models often send them), and 3.0 counts as 3 where an integer is wanted."""
    if not isinstance(value, Mapping):
        raise Invalid(f"the {noun}s must be a JSON object, not {json_type(value)}")
    spec = _schema(model)["properties"]
    given = {
        key: int(item)
        if isinstance(item, float) and item.is_integer() and _type(spec.get(key)) == "integer"
        else item
        for key, item in value.items()
        if item is not None
    }
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise Invalid(_describe(exc, given, spec, noun)) from None


def fits(value: object, spec: dict[str, Any]) -> bool:
    """Whether `value` fits a JSON schema of the small kind NEXUS sends for constrained
    answers (an endpoint may ignore the schema): checked by the same `validate`, through
    a model built from the schema."""
    branches = spec.get("oneOf") or [spec]
    for branch in branches:
        try:
            validate(model_for(json.dumps(branch, sort_keys=True)), value)
        except Invalid:
            continue
        return True
    return False


@functools.lru_cache(maxsize=256)
def model_for(spec_json: str) -> type[BaseModel]:
    """A pydantic model for an object schema given as JSON text (cached by that text):
    properties of type string, integer, number, boolean, array or object, with `enum`,
    `minLength` (of the stripped text), `minimum`, `required` and no other keys."""
    spec = json.loads(spec_json)
    required = set(spec.get("required", []))
    fields: dict[str, Any] = {}
    for name, prop in spec.get("properties", {}).items():
        kind = _annotation(prop)
        fields[name] = (kind, ...) if name in required else (kind | None, None)
    return create_model("Answer", __base__=Strict, **fields)


def _annotation(prop: dict[str, Any]) -> Any:
    if "enum" in prop:
        return Literal[tuple(prop["enum"])]
    kind = prop.get("type")
    if kind == "string":
        return Annotated[str, StringConstraints(strip_whitespace=True,
                                                min_length=prop.get("minLength", 0))]  # fmt: skip
    if kind in ("integer", "number"):
        base = int if kind == "integer" else float
        return Annotated[base, Field(ge=prop["minimum"])] if "minimum" in prop else base
    if kind == "boolean":
        return bool
    if kind == "array":
        return list[_annotation(prop.get("items", {}))]  # type: ignore[misc]
    if kind == "object":
        return model_for(json.dumps(prop, sort_keys=True)) if "properties" in prop else dict
    return Any


def usage(name: str, model: type[BaseModel], skip: tuple[str, ...] = ("reason",)) -> str:
    """`name takes {a: string, b: integer (optional)}`: appended to errors so a model can
    retry with the right shape."""
    spec = schema(model)
    required = set(spec["required"])
    shown = [
        f"{key}: {_type(item)}" + ("" if key in required else " (optional)")
        for key, item in spec["properties"].items()
        if key not in skip
    ]
    return f"{name} takes {{{', '.join(shown)}}}"


def json_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")


def _describe(exc: ValidationError, given: Mapping[str, Any], spec: dict, noun: str) -> str:
    errors = exc.errors()
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing" and e["loc"]]
    extra = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if extra:
        return f"unexpected {noun}(s) {', '.join(extra)}"
    if missing:
        return f"missing required {noun}(s) {', '.join(missing)}"
    first = errors[0]
    key = str(first["loc"][0]) if first["loc"] else ""
    if first["type"].endswith("_type") and key in given:
        expected = _type(spec.get(key))
        return f"{noun} {key} must be of type {expected}, not {json_type(given[key])}"
    message = first["msg"].removeprefix("Value error, ")
    return f"{noun} {key}: {message[0].lower()}{message[1:]}" if key else message


def _plain(spec: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in spec:  # nested shapes are written out: small models do not follow refs
        spec = {
            **defs[spec["$ref"].rsplit("/", 1)[-1]],
            **{k: v for k, v in spec.items() if k != "$ref"},
        }
    spec = {k: v for k, v in spec.items() if k != "title"}
    options = spec.pop("anyOf", None)
    if options is not None:
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            spec = {**_plain(kept[0], defs), **spec}
        else:
            spec["anyOf"] = kept
    if spec.get("default", 0) is None:
        del spec["default"]
    if isinstance(spec.get("items"), dict):
        spec["items"] = _plain(spec["items"], defs)
    if isinstance(spec.get("properties"), dict):
        spec["properties"] = {k: _plain(v, defs) for k, v in spec["properties"].items()}
    return spec


def _type(spec: dict[str, Any] | None) -> str:
    return str((spec or {}).get("type", "value"))
