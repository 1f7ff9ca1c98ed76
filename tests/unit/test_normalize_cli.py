"""`oms normalize`: JSON lines on stdout, quarantine lines on stderr, exit codes 0 / 1 / 2."""

import json

import pytest
from omsdev.cli import main

from tests.unit.normalize_helpers import synthetic_file

SHOPIFY_FILE = synthetic_file("shopify")
AMAZON_FILE = synthetic_file("amazon")
CONTRACT_FIELDS = {
    "order_key", "channel", "shop_id", "channel_order_id", "status", "channel_status", "buyer_id",
    "currency", "total", "lines", "ship_to", "created_at", "paid_at", "updated_at",
}
SHIP_TO_FIELDS = {"country", "province", "city", "district", "address", "postal_code", "name", "phone", "encrypted"}
LINE_FIELDS = {"line_id", "sku", "seller_sku", "quantity", "unit_price"}


@pytest.mark.parametrize(
    ("channel", "path", "order_ids", "statuses"),
    [
        ("shopify", SHOPIFY_FILE, ["6123456789012", "6123456700001", "6123456600009"],
         ["paid", "cancelled", "shipped"]),
        ("amazon", AMAZON_FILE, ["028-4417392-5539521", "250-7781204-3306645", "503-9920318-1187406"],
         ["paid", "cancelled", "shipped"]),
    ],
)
def test_prints_one_contract_object_per_order(channel, path, order_ids, statuses, capsys):
    # GIVEN a synthetic list response WHEN `oms normalize --channel C --shop s1 FILE` runs
    code = main(["normalize", "--channel", channel, "--shop", "s1", str(path)])
    captured = capsys.readouterr()
    # THEN it exits 0, with nothing on stderr
    assert code == 0
    assert captured.err == ""
    # AND each line is one compact JSON object with exactly the 14 contract fields
    lines = captured.out.splitlines()
    assert len(lines) == len(order_ids)
    orders = [json.loads(line) for line in lines]
    assert all(set(order) == CONTRACT_FIELDS for order in orders)
    assert all(set(order["ship_to"]) == SHIP_TO_FIELDS for order in orders)
    assert all(set(line) == LINE_FIELDS for order in orders for line in order["lines"])
    assert [o["order_key"] for o in orders] == [f"{channel}#s1#{order_id}" for order_id in order_ids]
    assert [o["status"] for o in orders] == statuses
    assert all(isinstance(o["total"], str) for o in orders)


def test_shop_defaults_to_default_and_text_is_not_ascii_escaped(capsys):
    # GIVEN the Shopify file and no --shop WHEN normalized
    assert main(["normalize", "--channel", "shopify", str(SHOPIFY_FILE)]) == 0
    out = capsys.readouterr().out
    # THEN the shop is "default" and Chinese text is printed as is
    assert json.loads(out.splitlines()[0])["order_key"] == "shopify#default#6123456789012"
    assert "深圳市" in out


def test_a_malformed_shopify_order_is_quarantined_and_the_rest_still_print(tmp_path, capsys):
    # GIVEN the Shopify file whose second order has a quantity that is not a number
    document = json.loads(SHOPIFY_FILE.read_text(encoding="utf-8"))
    document["orders"][1]["line_items"][0]["quantity"] = "two"
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    # WHEN normalized
    code = main(["normalize", "--channel", "shopify", str(path)])
    captured = capsys.readouterr()
    # THEN exit 1, the two good orders on stdout, one quarantine line on stderr naming the field
    assert code == 1
    assert [json.loads(line)["channel_order_id"] for line in captured.out.splitlines()] == [
        "6123456789012", "6123456600009"]
    assert [json.loads(line) for line in captured.err.splitlines()] == [{
        "quarantined": True,
        "channel_order_id": "6123456700001",
        "reason": "line_items[0].quantity: 'two' is not an integer",
    }]


def test_a_malformed_amazon_order_without_id_is_quarantined_with_a_null_id(tmp_path, capsys):
    # GIVEN the Amazon file whose first order lost its AmazonOrderId
    document = json.loads(AMAZON_FILE.read_text(encoding="utf-8"))
    del document["getOrders"]["payload"]["Orders"][0]["AmazonOrderId"]
    path = tmp_path / "amazon.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    # WHEN normalized
    code = main(["normalize", "--channel", "amazon", "--shop", "eu", str(path)])
    captured = capsys.readouterr()
    # THEN exit 1, the other two print, the quarantine line has no id and says why
    assert code == 1
    assert len(captured.out.splitlines()) == 2
    assert json.loads(captured.err) == {
        "quarantined": True, "channel_order_id": None, "reason": "order.AmazonOrderId: missing"}


@pytest.mark.parametrize(
    ("content", "channel", "message"),
    [
        (None, "shopify", "cannot read"),                      # no such file
        ("{not json", "amazon", "cannot read"),
        ('{"orders": {}}', "shopify", "cannot read"),           # JSON, wrong shape
        ('{"orders": []}', "amazon", "cannot read"),            # a Shopify file given as Amazon
        ('{"orders": []}', "ebay", "no normalizer for channel 'ebay'"),
    ],
)
def test_unusable_file_or_channel_exits_2_with_a_message(tmp_path, capsys, content, channel, message):
    # GIVEN a missing, unparseable or mis-shaped file, or an unknown channel
    path = tmp_path / "response.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    # WHEN normalized THEN exit 2, nothing on stdout, a clear message on stderr
    assert main(["normalize", "--channel", channel, str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_an_empty_response_prints_nothing_and_exits_0(tmp_path, capsys):
    # GIVEN an orders.json page with no orders WHEN normalized THEN exit 0 and no output
    path = tmp_path / "empty.json"
    path.write_text('{"orders": []}', encoding="utf-8")
    assert main(["normalize", "--channel", "shopify", str(path)]) == 0
    assert capsys.readouterr() == ("", "")
