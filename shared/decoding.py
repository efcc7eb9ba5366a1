"""Decoding a request body into its Struct, naming every field at fault in one ValidationFailed.

msgspec stops at the first problem it meets. A valid body takes the fast path (one cached typed
decoder per type, nothing else); only a body that fails is decoded again as plain JSON and its
fields checked one by one, so a 422 names every missing, mistyped and unknown field at once
(DESIGN.md section 6). Field names are JSON names (`from`, not `from_`), nested paths read like
msgspec's own without the `$.`: `durations[0]`, `availability[1].day_of_week`.
"""

from __future__ import annotations

import re
import types
from typing import Any, TypeVar, Union, get_args, get_origin

import msgspec

from shared.errors import ValidationFailed

T = TypeVar("T")

REQUIRED = "is required"
UNKNOWN = "is not a known field"
NOT_JSON = "is not valid JSON"

_PATH = re.compile(r"at `\$\.?([^`]*)`")
_SKIPPED = (type(None), msgspec.UnsetType)


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    """One typed decoder per request type, made on first use (a handful of types: never evicted)."""
    decoder = _DECODERS.get(type_)
    if decoder is None:
        decoder = _DECODERS[type_] = msgspec.json.Decoder(type_)
    return decoder


def decode_request(body: bytes | str, type_: type[T]) -> T:
    """`body` as a `type_`, or a ValidationFailed naming every field at fault (invalid JSON: `body`)."""
    try:
        return _decoder(type_).decode(body)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        first = first_problem(exc)
    except msgspec.DecodeError as exc:
        raise first_problem(exc) from None
    raise _every_problem(body, type_, first) from None


def first_problem(exc: msgspec.DecodeError) -> ValidationFailed:
    """msgspec's one complaint as a field error, worded as the command service has always worded it.

    `Expected `int`, got `str` - at `$.durations[0]`` -> {"durations[0]": ["Expected `int`, got `str`"]}.
    """
    text = str(exc)
    match = _PATH.search(text)
    at = match.group(1) if match else ""
    message = _PATH.sub("", text).rstrip(" -")
    if not isinstance(exc, msgspec.ValidationError):
        return ValidationFailed(f"body: {NOT_JSON} ({message})", {"body": [NOT_JSON]})
    if text.startswith(("Object missing required field", "Object contains unknown field")):
        field = _join(at, text.split("`")[1])
        problem = REQUIRED if text.startswith("Object missing") else UNKNOWN
        return ValidationFailed(f"{field}: {problem}", {field: [problem]})
    field = at or "body"
    return ValidationFailed(f"{field}: {message}", {field: [message]})


def field_problems(value: Any, type_: Any) -> dict[str, list[str]]:
    """Every problem of a decoded JSON value against `type_`, by field path (empty: none found)."""
    problems: dict[str, list[str]] = {}
    _check(value, type_, "", problems)
    return problems


def _every_problem(body: bytes | str, type_: Any, first: ValidationFailed) -> ValidationFailed:
    """All the fields at fault. The message stays msgspec's first complaint, as it always read, when
    that field is among them; otherwise it names the first field found, as `Problems` does."""
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        # The typed decoder can stop at a field before it reaches the broken part of the JSON.
        return first_problem(exc)
    problems = field_problems(value, type_)
    if not problems:
        return first  # a rule the per-field pass cannot see: msgspec's own single message
    if set(first.fields) <= set(problems):
        return ValidationFailed(first.message, problems)
    field = next(iter(problems))
    return ValidationFailed(f"{field}: {problems[field][0]}", problems)


def _check(value: Any, type_: Any, path: str, problems: dict[str, list[str]]) -> None:
    """Add the problems of `value` at `path`; descends into Structs, lists and dicts to reach every one."""
    try:
        msgspec.convert(value, type_, strict=True)
        return
    except msgspec.ValidationError as exc:
        error = exc
    before = sum(map(len, problems.values()))
    inner = _unwrap(type_)
    if isinstance(inner, type) and issubclass(inner, msgspec.Struct) and isinstance(value, dict) \
            and not inner.__struct_config__.array_like:
        _check_struct(value, inner, path, problems)
    elif get_origin(inner) in (list, set, frozenset) and isinstance(value, list):
        (item_type,) = get_args(inner) or (Any,)
        for index, item in enumerate(value):
            _check(item, item_type, f"{path}[{index}]", problems)
    elif get_origin(inner) is dict and isinstance(value, dict) and len(get_args(inner)) == 2:
        item_type = get_args(inner)[1]
        for key, item in value.items():
            _check(item, item_type, _join(path, str(key)), problems)
    if sum(map(len, problems.values())) == before:
        # Nothing below was at fault (a constraint on the whole value): msgspec's own message.
        for field, messages in first_problem(error).fields.items():
            problems.setdefault(_below(path, field) or "body", []).extend(messages)


def _check_struct(value: dict[str, Any], struct_type: type[msgspec.Struct], path: str,
                  problems: dict[str, list[str]]) -> None:
    """Missing required fields, each present field's own problems, then unknown keys."""
    config = struct_type.__struct_config__
    known = {config.tag_field} if config.tag_field else set()
    for field in msgspec.structs.fields(struct_type):
        known.add(field.encode_name)
        where = _join(path, field.encode_name)
        if field.encode_name in value:
            _check(value[field.encode_name], field.type, where, problems)
        elif field.required:
            problems.setdefault(where, []).append(REQUIRED)
    if config.forbid_unknown_fields:
        for key in value:
            if key not in known:
                problems.setdefault(_join(path, key), []).append(UNKNOWN)


def _unwrap(type_: Any) -> Any:
    """`X | None` and `X | UnsetType` as X (a None or absent value already converted fine)."""
    if get_origin(type_) in (Union, types.UnionType):
        rest = [arg for arg in get_args(type_) if arg not in _SKIPPED]
        if len(rest) == 1:
            return rest[0]
    return type_


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _below(path: str, relative: str) -> str:
    """A path msgspec gave relative to a value (`body`, `[0]`, `x`, `[0].x`) made absolute under `path`."""
    if relative == "body":
        return path
    return path + relative if relative.startswith("[") else _join(path, relative)
