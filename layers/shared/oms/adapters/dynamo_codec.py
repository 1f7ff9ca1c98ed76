"""Plain Python values <-> DynamoDB attribute values (numbers stay Decimal, never float)."""

from __future__ import annotations

from decimal import Decimal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: dict) -> dict:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def from_item(item: dict) -> dict:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def to_value(value: object) -> dict:
    return _serializer.serialize(value)


def document_value(document: object) -> dict:
    """A JSON-like document (scores, facts) as an attribute value: floats become Decimal through their
    shortest text (boto3 refuses floats)."""
    return _serializer.serialize(_without_floats(document))


def _without_floats(value: object) -> object:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _without_floats(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_without_floats(inner) for inner in value]
    return value
