"""Query for the local cloud's moto: read the queried partition, not the whole table.

moto's Table.query looks at every item of the table (`all_items()`, which also sorts them all)
for each call, so a Query costs time in proportion to the table: with a few thousand risk
aggregates, every assessment's window count took tens of milliseconds and a benchmark hours. A
Query on the table's own key names one partition; this version hands moto's query just that
partition's items (in key order), and for an index query the table's items unsorted (moto sorts
what it found itself). Results are the same; the local cloud serves DynamoDB requests one at a
time, so the per-table hint cannot leak into another request.
"""

from __future__ import annotations

from moto.dynamodb.models.table import Table

_HINT = "_oms_query_hint"  # None | ("partition", hash key) | ("unsorted",)


def install() -> None:
    """Replace moto's Table.query / all_items in this process (idempotent)."""
    if getattr(Table.query, "_oms_partition_query", False):
        return
    original_query, original_all_items = Table.query, Table.all_items

    def query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
              projection_expressions, index_name=None, *args, **kwargs):
        setattr(self, _HINT, ("unsorted",) if index_name or hash_key is None else ("partition", hash_key))
        try:
            return original_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                                  scan_index_forward, projection_expressions, index_name, *args, **kwargs)
        finally:
            setattr(self, _HINT, None)

    def all_items(self):
        hint = getattr(self, _HINT, None)
        if hint is None:
            return original_all_items(self)
        if hint[0] == "unsorted":
            return [item for hash_set in self.items.values()
                    for item in (hash_set.values() if self.range_key_attr else (hash_set,))]
        partition = self.items.get(hint[1])
        if partition is None:
            return []
        if not self.range_key_attr:
            return [partition]
        return sorted(partition.values(), key=lambda item: item.range_key)

    query._oms_partition_query = True
    Table.query, Table.all_items = query, all_items
