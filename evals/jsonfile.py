"""Read a JSON data file and check it against the JSON Schema kept beside it; errors say file:line: field: what.

`load_checked(path, schema_path, unique=..., check=...)` returns the parsed data or raises JsonFileError listing
every problem, sorted by line. Lines come from a small scan of the text (`locate`) that maps each JSON path to
where its value starts, since the json module keeps no positions. Uniqueness of a property across a list
(rule ids, candidate names) is checked here: JSON Schema cannot say "unique by one property".

`loads_strict(text)` is the parser every data file goes through (these files and the JSONL rows of evals/dataset.py):
besides malformed JSON it finds what json.loads accepts silently, a key given twice in one object (the last
would win) and a string that is not valid Unicode (a lone surrogate such as "\\ud800", which only a JSON escape
can write and which fails later, far from the file, when the text is encoded as UTF-8).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

JsonPath = tuple  # keys and list indices from the top level: ('rules', 3, 'kind')


class JsonFileError(ValueError):
    pass


def dotted(path: JsonPath) -> str:
    """('rules', 3, 'kind') -> 'rules[3].kind'; the top level is '(top level)'. A key that is not valid Unicode is
    shown escaped (\\ud800), so the message itself can be printed."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return _escaped(out) or "(top level)"


def _escaped(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def loads_strict(text: str) -> tuple[object, list[tuple[JsonPath, str]]]:
    """(data, problems): json.loads, and (JSON path, message) for every key given twice in one object and every
    string (key or value) that cannot be encoded as UTF-8. Raises json.JSONDecodeError on malformed JSON."""
    repeated: list[tuple[dict, str]] = []  # holds each object, so its id() stays its own until paths are found

    def pairs_hook(pairs):
        obj: dict = {}
        for key, value in pairs:
            if key in obj:
                repeated.append((obj, key))
            obj[key] = value
        return obj

    data = json.loads(text, object_pairs_hook=pairs_hook)
    problems: list[tuple[JsonPath, str]] = []
    where_obj: dict[int, JsonPath] = {}

    def walk(value, path: JsonPath) -> None:
        if isinstance(value, dict):
            where_obj[id(value)] = path
            for key, item in value.items():
                _check_text(key, (*path, key), problems, "key")
                walk(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, (*path, i))
        elif isinstance(value, str):
            _check_text(value, path, problems, "value")

    walk(data, ())
    for obj, key in repeated:
        if id(obj) in where_obj:  # else the object was itself a repeated key's earlier value, reported there
            problems.append(((*where_obj[id(obj)], key), f"key {_escaped(key)!r} given twice in one object "
                                                          f"(JSON keeps only the last); give it once"))
    return data, problems


def _check_text(text: str, path: JsonPath, problems: list, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = _escaped(text[exc.start])
        problems.append((path, f"the {what} is not valid Unicode: a lone surrogate {bad} at character {exc.start + 1} "
                               f"(a \\ud800-\\udfff escape must be half of a pair); it cannot be written as UTF-8"))


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
    return list(dict.fromkeys(out))  # jsonschema may report one `required` error per missing key, each listing them all


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


def read_utf8(path: Path) -> str:
    """The file's text; JsonFileError naming the line and column of the first byte that is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise JsonFileError(f"{path}:{line}: not UTF-8: byte {raw[exc.start]:#04x} at column {column} "
                            f"(save the file as UTF-8)") from None


def load_checked(path: Path | str, schema_path: Path | str, unique=None, check=None):
    """Parse `path`, validate it against `schema_path`, check `unique` ({key: path of the list}, or (key, path of the
    list) pairs), then, once the schema holds, `check(data)` -> [(JSON path, message)]; data or JsonFileError."""
    path, schema_path = Path(path), Path(schema_path)
    text = read_utf8(path)
    try:
        data, problems = loads_strict(text)
    except json.JSONDecodeError as exc:
        raise JsonFileError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg} (column {exc.colno})") from exc
    shape = schema_problems(data, schema_path)
    problems += shape
    for key, list_path in (unique.items() if isinstance(unique, dict) else unique or ()):
        items = data
        for part in list_path:
            items = items.get(part) if isinstance(items, dict) else None
        problems += duplicate_problems(items, key, list_path)
    if check is not None and not shape:
        problems += check(data)
    if problems:
        where = locate(text)
        lines = sorted((line_of(text, where, p), dotted(p), msg) for p, msg in problems)
        shown = [f"{path}:{line}: field '{field}': {msg}" for line, field, msg in lines[:20]]
        more = [f"... and {len(lines) - 20} more"] if len(lines) > 20 else []
        raise JsonFileError("\n".join([*shown, *more, f"(the schema: {schema_path})"]))
    return data
