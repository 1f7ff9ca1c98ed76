"""The Warehouses table: the warehouses allocation may choose (regions covered, daily capacity)."""

from __future__ import annotations

from oms.adapters import aws
from oms.adapters.dynamo_codec import from_item


class WarehousesTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._dynamodb = aws.client("dynamodb")

    def list(self) -> list[dict]:
        """Every warehouse (a handful: one Scan page of a tiny table)."""
        rows, kwargs = [], {"TableName": self.name, "ConsistentRead": True}
        while True:
            page = self._dynamodb.scan(**kwargs)
            rows.extend(from_item(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return rows
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put(self, warehouse) -> None:
        """Create or update a warehouse (an `oms.domain.allocation.Warehouse`).

        An update, not a put: attributes other tools keep on the row survive a reload of the CSV.
        """
        if not warehouse.regions:
            raise ValueError(f"warehouse {warehouse.warehouse_id}: a string set cannot be empty, give it a region")
        self._dynamodb.update_item(
            TableName=self.name,
            Key={"warehouse_id": {"S": warehouse.warehouse_id}},
            UpdateExpression="SET #name = :name, regions = :regions, daily_capacity = :capacity",
            ExpressionAttributeNames={"#name": "name"},  # a DynamoDB reserved word
            ExpressionAttributeValues={
                ":name": {"S": warehouse.name},
                ":regions": {"SS": sorted(warehouse.regions)},
                ":capacity": {"N": str(warehouse.daily_capacity)},
            },
        )
