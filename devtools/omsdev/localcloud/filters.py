"""Lambda event filtering (FilterCriteria) as event source mappings apply it to each record.

A record passes when any filter's pattern matches it. A pattern is a JSON object whose leaves are
arrays of rules, matched against the Lambda-shaped record (for SQS with `body` parsed when it is
JSON): exact strings / numbers / null, `prefix`, `suffix`, `equals-ignore-case`, `numeric` ranges,
`exists`, `anything-but` (values, or a prefix/suffix/equals-ignore-case). All keys of a pattern must
match (AND); the rules of one leaf are alternatives (OR); an array in the record matches when any of
its elements does.
"""

from __future__ import annotations

import json
import operator
from typing import Any

_MISSING = object()
_NUMERIC = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class FilterPatternError(ValueError):
    """A FilterCriteria pattern Lambda would reject."""


def compile_filters(filter_criteria: dict | None) -> list[dict]:
    """The patterns of a FilterCriteria property, parsed and checked."""
    patterns = []
    for entry in (filter_criteria or {}).get("Filters", []):
        raw = entry.get("Pattern")
        try:
            pattern = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as error:
            raise FilterPatternError(f"filter pattern is not JSON: {raw!r} ({error})") from error
        if not isinstance(pattern, dict):
            raise FilterPatternError(f"filter pattern must be a JSON object: {raw!r}")
        _check(pattern, raw)
        patterns.append(pattern)
    return patterns


def matches_any(patterns: list[dict], record: dict) -> bool:
    """True when there are no filters or any pattern matches the record."""
    return not patterns or any(matches(pattern, record) for pattern in patterns)


def matches(pattern: dict, document: Any) -> bool:
    for key, rule in pattern.items():
        value = document.get(key, _MISSING) if isinstance(document, dict) else _MISSING
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not matches(rule, value):
                return False
        elif not any(_rule_matches(item, value) for item in rule):
            return False
    return True


def _rule_matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict) and "exists" in rule:
        present = value is not _MISSING and not isinstance(value, dict)
        return present == bool(rule["exists"])
    if value is _MISSING:
        return False
    if isinstance(value, list):
        return any(_rule_matches(rule, item) for item in value)
    if not isinstance(rule, dict):
        return _equal(rule, value)
    (name, argument), = rule.items()
    if name == "anything-but":
        return not _anything_but_hit(argument, value)
    return _operator(name, argument, value)


def _equal(rule: Any, value: Any) -> bool:
    if rule is None or value is None:
        return rule is value
    if _is_number(rule) and _is_number(value):
        return float(rule) == float(value)
    if isinstance(rule, bool) or isinstance(value, bool):
        return rule is value
    return type(rule) is type(value) and rule == value


def _operator(name: str, argument: Any, value: Any) -> bool:
    if name == "prefix":
        return isinstance(value, str) and value.startswith(argument)
    if name == "suffix":
        return isinstance(value, str) and value.endswith(argument)
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == str(argument).lower()
    if name == "numeric":
        if not _is_number(value):
            return False
        pairs = zip(argument[0::2], argument[1::2])
        return all(_NUMERIC[op](float(value), float(bound)) for op, bound in pairs)
    raise FilterPatternError(f"unsupported filter rule {name!r}")


def _anything_but_hit(argument: Any, value: Any) -> bool:
    if isinstance(argument, dict):
        (name, inner), = argument.items()
        return _operator(name, inner, value)
    values = argument if isinstance(argument, list) else [argument]
    return any(_equal(item, value) for item in values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(pattern: dict, raw: Any) -> None:
    for key, rule in pattern.items():
        if isinstance(rule, dict):
            _check(rule, raw)
            continue
        if not isinstance(rule, list) or not rule:
            raise FilterPatternError(f"filter pattern leaf {key!r} must be a non-empty array: {raw!r}")
        for item in rule:
            if not isinstance(item, dict):
                continue
            if len(item) != 1:
                raise FilterPatternError(f"filter rule {item!r} must have exactly one operator: {raw!r}")
            (name, argument), = item.items()
            if name not in ("exists", "anything-but", "prefix", "suffix", "equals-ignore-case", "numeric"):
                raise FilterPatternError(f"unsupported filter rule {name!r}: {raw!r}")
            if name == "numeric":
                ops = argument[0::2] if isinstance(argument, list) else None
                if not ops or len(argument) % 2 or any(op not in _NUMERIC for op in ops):
                    raise FilterPatternError(f"invalid numeric rule {argument!r}: {raw!r}")
