"""The local cloud's partition Query (`omsdev.localcloud.moto_query`) answers as DynamoDB does: the
queried partition only, in key order either way, with Limit, pagination, key conditions, filters
and index queries, over a moto server that also holds many other partitions."""

from __future__ import annotations

import uuid

import boto3
import pytest


@pytest.fixture(scope="module")
def dynamodb(moto_endpoint):
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    name = f"q{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "colour")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_colour", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "colour", "KeyType": "HASH"},
                                               {"AttributeName": "sk", "KeyType": "RANGE"}]}])
    # 30 partitions of 20 items, put in a scrambled order
    for index in sorted(range(600), key=lambda n: (n * 7919) % 600):
        partition, position = divmod(index, 20)
        client.put_item(TableName=name, Item={"pk": {"S": f"p{partition:02d}"}, "sk": {"S": f"s{position:02d}"},
                                              "colour": {"S": ("red", "blue")[index % 2]}, "n": {"N": str(index)}})
    return client, name


def keys(items):
    return [(item["pk"]["S"], item["sk"]["S"]) for item in items]


def test_a_query_returns_its_partition_only_in_key_order_both_ways(dynamodb):
    client, name = dynamodb
    forward = client.query(TableName=name, KeyConditionExpression="pk = :p",
                           ExpressionAttributeValues={":p": {"S": "p07"}})["Items"]
    assert keys(forward) == [("p07", f"s{n:02d}") for n in range(20)]
    backward = client.query(TableName=name, KeyConditionExpression="pk = :p", ScanIndexForward=False,
                            ExpressionAttributeValues={":p": {"S": "p07"}})["Items"]
    assert keys(backward) == list(reversed(keys(forward)))
    assert client.query(TableName=name, KeyConditionExpression="pk = :p",
                        ExpressionAttributeValues={":p": {"S": "nope"}})["Items"] == []


def test_key_conditions_limits_pages_counts_and_filters_behave(dynamodb):
    client, name = dynamodb
    between = client.query(TableName=name, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                           ExpressionAttributeValues={":p": {"S": "p03"}, ":a": {"S": "s05"}, ":b": {"S": "s09"}})
    assert [sk for _, sk in keys(between["Items"])] == ["s05", "s06", "s07", "s08", "s09"]
    pages, start = [], None
    while True:
        kwargs = {"ExclusiveStartKey": start} if start else {}
        page = client.query(TableName=name, KeyConditionExpression="pk = :p", Limit=6,
                            ExpressionAttributeValues={":p": {"S": "p11"}}, **kwargs)
        pages.append(keys(page["Items"]))
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert [len(page) for page in pages][:3] == [6, 6, 6] and sum(pages, []) == [("p11", f"s{n:02d}") for n in range(20)]
    counted = client.query(TableName=name, KeyConditionExpression="pk = :p AND begins_with(sk, :s)", Select="COUNT",
                           ExpressionAttributeValues={":p": {"S": "p00"}, ":s": {"S": "s1"}})
    assert counted["Count"] == 10
    red = client.query(TableName=name, KeyConditionExpression="pk = :p", FilterExpression="colour = :c",
                       ExpressionAttributeValues={":p": {"S": "p02"}, ":c": {"S": "red"}})["Items"]
    assert len(red) == 10 and all(item["colour"]["S"] == "red" for item in red)


def test_an_index_query_still_sees_every_partition(dynamodb):
    client, name = dynamodb
    blue = client.query(TableName=name, IndexName="by_colour", KeyConditionExpression="colour = :c AND sk = :s",
                        ExpressionAttributeValues={":c": {"S": "blue"}, ":s": {"S": "s01"}})["Items"]
    assert sorted(pk for pk, _ in keys(blue)) == [f"p{n:02d}" for n in range(30)]
