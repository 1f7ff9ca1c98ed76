"""Plain Python values <-> DynamoDB attribute values (numbers stay Decimal, never float)."""

from __future__ import annotations

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: dict) -> dict:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def from_item(item: dict) -> dict:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def to_value(value: object) -> dict:
    return _serializer.serialize(value)
