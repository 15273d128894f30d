"""Read a JSON data file and check it against the JSON Schema kept beside it; errors say file:line: field: what.

`load_checked(path, schema_path, unique=...)` returns the parsed data or raises JsonFileError listing every
problem, sorted by line. Lines come from a small scan of the text (`locate`) that maps each JSON path to
where its value starts, since the json module keeps no positions. Uniqueness of a property across a list
(rule ids, candidate names) is checked here: JSON Schema cannot say "unique by one property".
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

JsonPath = tuple  # keys and list indices from the top level: ('rules', 3, 'kind')


class JsonFileError(ValueError):
    pass


def dotted(path: JsonPath) -> str:
    """('rules', 3, 'kind') -> 'rules[3].kind'; the top level is '(top level)'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def locate(text: str) -> dict[JsonPath, int]:
    """{JSON path: offset where its value (or, for a key, the key) starts} for a text json.loads accepts."""
    from json.decoder import scanstring

    decoder = json.JSONDecoder()
    where: dict[JsonPath, int] = {}

    def skip(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    def value(i: int, path: JsonPath) -> int:
        i = skip(i)
        where.setdefault(path, i)
        if text[i] == "{":
            i = skip(i + 1)
            if text[i] == "}":
                return i + 1
            while True:
                key_at = i
                key, i = scanstring(text, i + 1)
                where[(*path, key)] = key_at  # the key's line: where an unknown or wrong field is written
                i = value(skip(i) + 1, (*path, key))  # past the ":"
                i = skip(i)
                if text[i] == "}":
                    return i + 1
                i = skip(i + 1)  # past the ","
        if text[i] == "[":
            i = skip(i + 1)
            if text[i] == "]":
                return i + 1
            n = 0
            while True:
                i = skip(value(i, (*path, n)))
                n += 1
                if text[i] == "]":
                    return i + 1
                i += 1
        return decoder.raw_decode(text, i)[1]

    value(0, ())
    return where


def line_of(text: str, where: dict[JsonPath, int], path: JsonPath) -> int:
    """The line of `path`, or of its nearest ancestor that was found."""
    path = tuple(path)
    while path and path not in where:
        path = path[:-1]
    return text.count("\n", 0, where.get(path, 0)) + 1


@lru_cache(maxsize=None)
def _validator(schema_path: str):
    from jsonschema import Draft202012Validator

    schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problems(data, schema_path: Path) -> list[tuple[JsonPath, str]]:
    """(JSON path, message) for every way `data` breaks its schema; for an unknown or missing key, the key's path."""
    out = []
    for e in _validator(str(schema_path)).iter_errors(data):
        path = tuple(e.absolute_path)
        if e.validator == "required":
            missing = [k for k in e.validator_value if isinstance(e.instance, dict) and k not in e.instance]
            out += [((*path, k), "missing (required)") for k in missing]
        elif e.validator == "additionalProperties" and isinstance(e.instance, dict):
            known = set(e.schema.get("properties", {}))
            out += [((*path, k), f"unknown field (known: {', '.join(sorted(known))})") for k in e.instance if k not in known]
        elif e.validator in ("anyOf", "not") and "description" in e.schema:
            out.append((path, f"{e.instance!r} is not allowed: {e.schema['description']}"))
        else:
            out.append((path, e.message))
    return out


def duplicate_problems(items, key: str, list_path: JsonPath) -> list[tuple[JsonPath, str]]:
    """(path of the repeated value, message) for every item whose `key` an earlier item already used."""
    if not isinstance(items, list):
        return []
    first: dict = {}
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(key), str):
            continue
        if item[key] in first:
            out.append(((*list_path, i, key), f"duplicate {key} {item[key]!r} (first at {dotted((*list_path, first[item[key]]))})"))
        else:
            first[item[key]] = i
    return out


def load_checked(path: Path | str, schema_path: Path | str, unique: dict[str, JsonPath] | None = None):
    """Parse `path`, validate it against `schema_path`, check `unique` ({key: path of the list}); data or JsonFileError."""
    path, schema_path = Path(path), Path(schema_path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonFileError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg} (column {exc.colno})") from exc
    problems = schema_problems(data, schema_path)
    for key, list_path in (unique or {}).items():
        items = data
        for part in list_path:
            items = items.get(part) if isinstance(items, dict) else None
        problems += duplicate_problems(items, key, list_path)
    if problems:
        where = locate(text)
        lines = sorted((line_of(text, where, p), dotted(p), msg) for p, msg in problems)
        shown = [f"{path}:{line}: field '{field}': {msg}" for line, field, msg in lines[:20]]
        more = [f"... and {len(lines) - 20} more"] if len(lines) > 20 else []
        raise JsonFileError("\n".join([*shown, *more, f"(the schema: {schema_path})"]))
    return data
