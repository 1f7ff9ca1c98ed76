"""Raw platform payloads kept with a DynamoDB item: zlib'd on the item when small, in S3 when not.

DynamoDB refuses an item over 400 KB, and a platform payload (an order of hundreds of lines, a broken
one stuffed with junk) can be larger even compressed. The Orders and Quarantine tables keep it on the
item as `raw_gz` up to INLINE_LIMIT_BYTES, which leaves the rest of the item ample room, and beyond
that as an object in the raw payload bucket named by the item's `raw_s3_key`.
"""

from __future__ import annotations

import json
import zlib

from oms.adapters import aws

INLINE_LIMIT_BYTES = 64 * 1024


def raw_fields(raw: dict, *, bucket: str, key: str) -> dict:
    """The item fields that keep `raw`: `{"raw_gz"}`, or `{"raw_s3_key"}` once it is written to S3 at `key`.

    The caller names the key deterministically, so a retried write overwrites its own object rather
    than leaving another one behind.
    """
    # surrogatepass: a payload decoded leniently from bad bytes may hold lone surrogates; kept as they came
    packed = zlib.compress(json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    if len(packed) <= INLINE_LIMIT_BYTES:
        return {"raw_gz": packed}
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=packed, ContentEncoding="deflate")
    return {"raw_s3_key": key}


def read_raw(fields: dict, *, bucket: str | None) -> dict:
    """The payload `raw_fields` kept, from the item or from S3 (`bucket` is only needed then)."""
    if "raw_gz" in fields:
        packed = bytes(fields["raw_gz"])
    else:
        packed = aws.client("s3").get_object(Bucket=bucket, Key=fields["raw_s3_key"])["Body"].read()
    return json.loads(zlib.decompress(packed))
