"""Shopify and Amazon normalizers on the synthetic responses, plus malformed input."""

import copy
import json
from pathlib import Path

import pytest

from oms.domain.order import MalformedOrderError
from oms.normalizers import normalizer_for
from omsdev.cli import main

CHANNELS_DIR = Path(__file__).resolve().parents[3] / "shared" / "channels"
SHOPIFY_FILE = CHANNELS_DIR / "shopify_synthetic.json"
AMAZON_FILE = CHANNELS_DIR / "amazon_sp_api_synthetic.json"
CONTRACT_FIELDS = {
    "order_key", "channel", "shop_id", "channel_order_id", "status", "channel_status", "buyer_id",
    "currency", "total", "lines", "ship_to", "created_at", "paid_at", "updated_at",
}


def normalized(channel: str, path: Path, shop: str = "default") -> list[dict]:
    normalizer = normalizer_for(channel)
    records = normalizer.split_response(json.loads(path.read_text()))
    return [normalizer.normalize(raw, shop).contract_dict() for raw in records]


def test_shopify_synthetic_orders_map_status_money_times_and_address():
    # GIVEN the synthetic Shopify orders.json WHEN normalized
    paid, cancelled, shipped = normalized("shopify", SHOPIFY_FILE, shop="hk-store")
    # THEN the paid order keeps shop money, converts +08:00 times to UTC and joins the address lines
    assert paid["order_key"] == "shopify#hk-store#6123456789012"
    assert (paid["status"], paid["channel_status"], paid["currency"], paid["total"]) == (
        "paid", "paid/unfulfilled", "HKD", "626.00")
    assert paid["buyer_id"] == "7788990011223"
    assert paid["lines"][0] == {
        "line_id": "15012345678901", "sku": "44001122334455", "seller_sku": "OOLONG-200",
        "quantity": 2, "unit_price": "188.00"}
    assert (paid["created_at"], paid["paid_at"], paid["updated_at"]) == (
        "2026-03-14T10:05:12Z", "2026-03-14T10:05:11Z", "2026-03-14T10:05:20Z")
    assert paid["ship_to"]["address"] == "Flat 8B, 23 Nathan Road, Tsim Sha Tsui"
    assert paid["ship_to"]["postal_code"] is None and paid["ship_to"]["country"] == "HK"
    # AND a cancelled-and-refunded order is cancelled, a fulfilled one shipped
    assert (cancelled["status"], cancelled["channel_status"]) == ("cancelled", "refunded/unfulfilled/cancelled")
    assert shipped["status"] == "shipped"
    assert shipped["ship_to"]["city"] == "深圳市"


def test_amazon_synthetic_orders_divide_item_price_by_quantity_and_fill_currency():
    unshipped, cancelled, shipped = normalized("amazon", AMAZON_FILE, shop="eu")
    # ItemPrice 51.98 covers two units
    assert unshipped["lines"][0]["quantity"] == 2
    assert unshipped["lines"][0]["unit_price"] == "25.99"
    assert (unshipped["status"], unshipped["channel_status"], unshipped["total"], unshipped["currency"]) == (
        "paid", "Unshipped", "87.48", "EUR")
    assert unshipped["buyer_id"] == "7x2kq9hv4m1p8zt@marketplace.amazon.de"
    assert unshipped["paid_at"] == unshipped["created_at"] == "2026-03-14T08:12:45Z"
    # a cancelled order has no OrderTotal and no address: currency from the JP marketplace, total 0
    assert (cancelled["status"], cancelled["currency"], cancelled["total"], cancelled["paid_at"]) == (
        "cancelled", "JPY", "0", None)
    assert cancelled["ship_to"]["country"] is None
    assert shipped["status"] == "shipped"
    assert shipped["ship_to"]["address"] == "六本木6丁目10-1, 六本木ヒルズ 1203号室"


def test_amazon_unit_price_that_does_not_divide_is_rounded_half_even_to_four_places():
    raw = normalizer_for("amazon").split_response(json.loads(AMAZON_FILE.read_text()))[0]
    raw = copy.deepcopy(raw)
    raw["items"][0]["QuantityOrdered"] = 3
    raw["items"][0]["ItemPrice"]["Amount"] = "10.00"
    order = normalizer_for("amazon").normalize(raw, "eu").contract_dict()
    assert order["lines"][0]["unit_price"] == "3.3333"


@pytest.mark.parametrize(
    ("mutate", "reason_part"),
    [
        (lambda o: o.pop("id"), "id: missing"),
        (lambda o: o["line_items"][1].__setitem__("quantity", "two"), "line_items[1].quantity"),
        (lambda o: o.__setitem__("total_price", "12,00"), "total_price"),
        (lambda o: o.__setitem__("financial_status", "bartered"), "financial_status"),
        (lambda o: o.__setitem__("currency", None), "currency"),
        (lambda o: o.__setitem__("updated_at", "yesterday"), "updated_at"),
        (lambda o: o.__setitem__("line_items", {"not": "a list"}), "line_items"),
    ],
)
def test_malformed_shopify_orders_raise_with_the_field_named(mutate, reason_part):
    raw = copy.deepcopy(json.loads(SHOPIFY_FILE.read_text())["orders"][0])
    mutate(raw)
    with pytest.raises(MalformedOrderError) as caught:
        normalizer_for("shopify").normalize(raw, "default")
    assert reason_part in caught.value.reason


@pytest.mark.parametrize(
    ("mutate", "reason_part"),
    [
        (lambda r: r["order"].pop("AmazonOrderId"), "AmazonOrderId"),
        (lambda r: r["order"].__setitem__("OrderStatus", "Lost"), "OrderStatus"),
        (lambda r: r["items"][0].__setitem__("QuantityOrdered", 1.5), "QuantityOrdered"),
        (lambda r: r["items"][0]["ItemPrice"].__setitem__("Amount", "abc"), "ItemPrice.Amount"),
        (lambda r: r.__setitem__("order", "garbage"), "AmazonOrderId"),
    ],
)
def test_malformed_amazon_orders_raise_with_the_field_named(mutate, reason_part):
    raw = copy.deepcopy(normalizer_for("amazon").split_response(json.loads(AMAZON_FILE.read_text()))[0])
    mutate(raw)
    with pytest.raises(MalformedOrderError) as caught:
        normalizer_for("amazon").normalize(raw, "eu")
    assert reason_part in caught.value.reason


def test_amazon_currency_unknowable_is_malformed():
    raw = {"order": {"AmazonOrderId": "1", "OrderStatus": "Pending", "MarketplaceId": "XX"}, "items": []}
    with pytest.raises(MalformedOrderError, match="currency"):
        normalizer_for("amazon").normalize(raw, "eu")


@pytest.mark.parametrize("channel,path", [("shopify", SHOPIFY_FILE), ("amazon", AMAZON_FILE)])
def test_cli_prints_one_contract_object_per_order(channel, path, capsys):
    assert main(["normalize", "--channel", channel, "--shop", "s1", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for line in lines:
        order = json.loads(line)
        assert set(order) == CONTRACT_FIELDS
        assert order["shop_id"] == "s1"


def test_cli_reports_a_malformed_order_on_stderr_and_prints_the_rest(tmp_path, capsys):
    document = json.loads(SHOPIFY_FILE.read_text())
    document["orders"][1]["line_items"][0]["price"] = "free"
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(document))
    assert main(["normalize", "--channel", "shopify", str(path)]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    report = json.loads(captured.err)
    assert report["channel_order_id"] == "6123456700001"
    assert "line_items[0].price" in report["reason"]


def test_cli_rejects_an_unreadable_file(tmp_path, capsys):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    assert main(["normalize", "--channel", "amazon", str(path)]) == 2
    assert "cannot read" in capsys.readouterr().err
