"""Allocation engine: hard filters, factor scores, the single-or-fewest-packages choice, stale data, refusals."""

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from oms.domain.allocation import (
    SOURCES,
    AllocationRules,
    AllocationWeights,
    Destination,
    Shipment,
    Warehouse,
    WarehouseFacts,
    decide_allocation,
    region_name,
)

NOW = datetime(2026, 11, 11, 10, 0, tzinfo=timezone.utc)
RULES = AllocationRules()
HANGZHOU = Destination(country="CN", province="浙江省")


def facts(
    warehouse_id: str,
    *,
    stock: dict[str, int],
    regions: tuple[str, ...] = ("CN",),
    daily_capacity: int = 1000,
    allocated_today: int = 0,
    transit_hours: float | None = 24.0,
    labour_load: float | None = 0.5,
    error_rate: float | None = 0.01,
    as_of: dict[str, datetime | None] | None = None,
) -> WarehouseFacts:
    """One warehouse's facts; fresh data from every source unless `as_of` says otherwise."""
    fresh = {source: NOW - timedelta(minutes=5) for source in SOURCES}
    return WarehouseFacts(
        warehouse=Warehouse(
            warehouse_id=warehouse_id,
            name=f"Warehouse {warehouse_id}",
            regions=frozenset(regions),
            daily_capacity=daily_capacity,
        ),
        available=stock,
        transit_hours=transit_hours,
        labour_load=labour_load,
        error_rate=error_rate,
        allocated_today=allocated_today,
        as_of=fresh | (as_of or {}),
    )


def candidate(decision, warehouse_id: str):
    return next(c for c in decision.candidates if c.warehouse_id == warehouse_id)


# --- weights and rules -------------------------------------------------------------------------------------


def test_the_default_weights_are_the_seed_formula():
    weights = AllocationWeights()
    assert weights.as_dict() == {"stock": 0.4, "delivery": 0.3, "labour": 0.2, "error": 0.1}


def test_a_negative_weight_is_refused_with_the_source_named():
    with pytest.raises(ValueError, match="'labour' must be a non-negative"):
        AllocationWeights(stock=0.6, delivery=0.3, labour=-0.1, error=0.2)


def test_weights_that_do_not_sum_to_one_are_refused_with_the_total():
    with pytest.raises(ValueError, match="sum to 1, got 1.100000"):
        AllocationWeights(stock=0.5, delivery=0.3, labour=0.2, error=0.1)


def test_weights_summing_to_one_within_float_noise_are_accepted():
    weights = AllocationWeights(stock=0.1, delivery=0.2, labour=0.3, error=0.4 + 1e-9)
    assert weights.stock == 0.1


def test_rules_refuse_a_non_positive_error_ceiling():
    # An error ceiling of 0 would divide by zero when scoring.
    with pytest.raises(ValueError, match="error_rate_ceiling"):
        AllocationRules(error_rate_ceiling=0)


# --- regions and coverage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("浙江省", "浙江"),
        ("浙江", "浙江"),
        ("浙江 省", "浙江"),
        ("\u3000浙江省\u3000", "浙江"),
        ("北京市", "北京"),
        ("广西壮族自治区", "广西"),
        ("新疆维吾尔自治区", "新疆"),
        ("宁夏回族自治区", "宁夏"),
        ("西藏自治区", "西藏"),
        ("香港特别行政区", "香港"),
        ("Zhejiang Province", "Zhejiang"),
        ("Zhejiang sheng", "Zhejiang"),
        ("zhejiang PROVINCE", "zhejiang"),
    ],
)
def test_region_names_drop_spaces_and_the_administrative_suffix(written, normalised):
    assert region_name(written) == normalised


def test_a_name_that_is_only_a_suffix_is_kept():
    assert region_name("省") == "省"


def test_region_keys_go_from_province_to_country():
    assert HANGZHOU.region_keys() == ("CN/浙江", "CN")
    assert Destination(country="CN", province=None).region_keys() == ("CN",)
    assert Destination(country=None, province="浙江").region_keys() == ()


@pytest.mark.parametrize(
    ("warehouse_region", "destination_province"),
    [("CN/浙江省", "浙江"), ("CN/浙江", "浙江省"), ("CN/Zhejiang Province", "ZHEJIANG"), ("CN", "四川省")],
)
def test_a_warehouse_covers_a_province_however_either_side_writes_it(warehouse_region, destination_province):
    warehouse = Warehouse(warehouse_id="WH-1", name="Hangzhou", regions=frozenset({warehouse_region}), daily_capacity=1)
    assert warehouse.covers(Destination(country="CN", province=destination_province))


def test_a_province_warehouse_does_not_cover_another_province_or_an_unknown_country():
    warehouse = Warehouse(warehouse_id="WH-1", name="Hangzhou", regions=frozenset({"CN/浙江"}), daily_capacity=1)
    assert not warehouse.covers(Destination(country="CN", province="江苏省"))
    assert not warehouse.covers(Destination(country="CN", province=None))
    assert not warehouse.covers(Destination(country=None, province="浙江"))


# --- hard filters ------------------------------------------------------------------------------------------


def test_each_hard_filter_rejects_with_its_reason_and_only_the_survivor_is_chosen():
    # GIVEN four warehouses, three of which fail one hard filter each
    warehouses = [
        facts("WH-SICHUAN", regions=("CN/四川",), stock={"SKU-1": 50}),
        facts("WH-FULL", daily_capacity=200, allocated_today=200, stock={"SKU-1": 50}),
        facts("WH-THIN", stock={"SKU-1": 2}),
        facts("WH-OK", regions=("CN/浙江省",), stock={"SKU-1": 5}, transit_hours=72.0),
    ]
    # WHEN an order of 3 units to Zhejiang is allocated
    decision = decide_allocation({"SKU-1": 3}, HANGZHOU, warehouses, RULES, NOW)
    # THEN the survivor ships it, even though the others would score better on transit or stock
    assert decision.shipments == (Shipment("WH-OK", (("SKU-1", 3),)),)
    assert decision.refusal is None
    assert candidate(decision, "WH-SICHUAN").rejected == ("not_covered",)
    assert candidate(decision, "WH-FULL").rejected == ("over_capacity",)
    assert candidate(decision, "WH-THIN").rejected == ("insufficient_stock",)
    assert candidate(decision, "WH-OK").eligible


def test_a_warehouse_failing_several_filters_records_every_reason_and_gets_no_factors():
    warehouses = [
        facts("WH-BAD", regions=("US",), daily_capacity=0, stock={}),
        facts("WH-OK", stock={"SKU-1": 5}),
    ]
    decision = decide_allocation({"SKU-1": 1}, HANGZHOU, warehouses, RULES, NOW)
    bad = candidate(decision, "WH-BAD")
    assert bad.rejected == ("not_covered", "over_capacity", "insufficient_stock")
    assert (bad.factors, bad.score, bad.eligible) == ({}, 0, False)


# --- factors -----------------------------------------------------------------------------------------------


def test_stock_factor_is_the_cover_left_after_the_order_relative_to_the_best_on_the_scarcest_sku():
    # GIVEN 10 units of each SKU ordered; WH-B has the most cups left but fewer lids
    warehouses = [
        facts("WH-A", stock={"CUP": 30, "LID": 30}),  # leaves 20 cups, 20 lids
        facts("WH-B", stock={"CUP": 50, "LID": 15}),  # leaves 40 cups, 5 lids
        facts("WH-C", stock={"CUP": 10, "LID": 50}),  # leaves 0 cups
    ]
    decision = decide_allocation({"CUP": 10, "LID": 10}, HANGZHOU, warehouses, RULES, NOW)
    # THEN each is judged by its weakest SKU against the best cover of that SKU (40 cups, 40 lids)
    assert candidate(decision, "WH-A").factors["stock"] == pytest.approx(0.5)  # min(20/40, 20/40)
    assert candidate(decision, "WH-B").factors["stock"] == pytest.approx(0.125)  # min(40/40, 5/40)
    assert candidate(decision, "WH-C").factors["stock"] == 0.0


def test_stock_factor_is_equal_for_all_when_nobody_has_any_cover_to_spare():
    warehouses = [facts("WH-A", stock={"CUP": 4}), facts("WH-B", stock={"CUP": 4})]
    decision = decide_allocation({"CUP": 4}, HANGZHOU, warehouses, RULES, NOW)
    assert [c.factors["stock"] for c in decision.candidates] == [1.0, 1.0]


def test_delivery_factor_is_the_fastest_transit_over_this_one_and_zero_when_unknown():
    warehouses = [
        facts("WH-FAST", stock={"CUP": 9}, transit_hours=12.0),
        facts("WH-SLOW", stock={"CUP": 9}, transit_hours=48.0),
        facts("WH-UNKNOWN", stock={"CUP": 9}, transit_hours=None),
    ]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    assert candidate(decision, "WH-FAST").factors["delivery"] == 1.0
    assert candidate(decision, "WH-SLOW").factors["delivery"] == pytest.approx(0.25)
    assert candidate(decision, "WH-UNKNOWN").factors["delivery"] == 0.0


def test_labour_factor_is_the_idle_share_capped_at_full_and_neutral_when_unknown():
    warehouses = [
        facts("WH-QUIET", stock={"CUP": 9}, labour_load=0.25),
        facts("WH-OVERTIME", stock={"CUP": 9}, labour_load=1.3),
        facts("WH-UNKNOWN", stock={"CUP": 9}, labour_load=None),
    ]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    assert candidate(decision, "WH-QUIET").factors["labour"] == pytest.approx(0.75)
    assert candidate(decision, "WH-OVERTIME").factors["labour"] == 0.0
    assert candidate(decision, "WH-UNKNOWN").factors["labour"] == 0.5


def test_error_factor_falls_to_zero_at_the_ceiling_and_is_neutral_when_unknown():
    warehouses = [
        facts("WH-CAREFUL", stock={"CUP": 9}, error_rate=0.01),
        facts("WH-AT-CEILING", stock={"CUP": 9}, error_rate=0.05),
        facts("WH-SLOPPY", stock={"CUP": 9}, error_rate=0.2),
        facts("WH-UNKNOWN", stock={"CUP": 9}, error_rate=None),
    ]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    assert candidate(decision, "WH-CAREFUL").factors["error"] == pytest.approx(0.8)
    assert candidate(decision, "WH-AT-CEILING").factors["error"] == 0.0
    assert candidate(decision, "WH-SLOPPY").factors["error"] == 0.0
    assert candidate(decision, "WH-UNKNOWN").factors["error"] == 0.5


def test_score_is_the_weighted_sum_of_the_factors_with_the_rules_weights():
    # GIVEN delivery-heavy weights and a fast warehouse beside a well-stocked slow one
    rules = AllocationRules(weights=AllocationWeights(stock=0.1, delivery=0.7, labour=0.1, error=0.1))
    warehouses = [
        facts("WH-STOCKED", stock={"CUP": 100}, transit_hours=48.0, labour_load=0.0, error_rate=0.0),
        facts("WH-FAST", stock={"CUP": 11}, transit_hours=12.0, labour_load=0.0, error_rate=0.0),
    ]
    decision = decide_allocation({"CUP": 10}, HANGZHOU, warehouses, rules, NOW)
    # THEN stocked = 0.1*1 + 0.7*0.25 + 0.1 + 0.1, fast = 0.1*(1/90) + 0.7*1 + 0.1 + 0.1, and speed wins
    assert candidate(decision, "WH-STOCKED").score == pytest.approx(0.475)
    assert candidate(decision, "WH-FAST").score == pytest.approx(0.1 / 90 + 0.9)
    assert decision.shipments[0].warehouse_id == "WH-FAST"
    assert decision.weights == rules.weights


# --- choice ------------------------------------------------------------------------------------------------


def test_the_highest_score_ships_the_whole_order_in_one_package_with_lines_sorted_by_sku():
    warehouses = [
        facts("WH-SLOW", stock={"CUP": 9, "BOWL": 9}, transit_hours=48.0),
        facts("WH-FAST", stock={"CUP": 9, "BOWL": 9}, transit_hours=12.0),
    ]
    decision = decide_allocation({"CUP": 2, "BOWL": 1}, HANGZHOU, warehouses, RULES, NOW)
    assert decision.shipments == (Shipment("WH-FAST", (("BOWL", 1), ("CUP", 2))),)
    assert not decision.split
    assert "WH-FAST fills the whole order" in decision.detail


def test_equal_scores_go_to_the_lower_warehouse_id_whatever_the_input_order():
    # GIVEN two identical warehouses, the higher id listed first
    warehouses = [facts("WH-B", stock={"CUP": 5}), facts("WH-A", stock={"CUP": 5})]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    assert decision.shipments[0].warehouse_id == "WH-A"
    assert [c.warehouse_id for c in decision.candidates] == ["WH-A", "WH-B"]


def test_an_excluded_warehouse_is_skipped_and_the_next_best_is_chosen():
    # GIVEN the best warehouse did not confirm its pre-reservation in time
    warehouses = [
        facts("WH-BEST", stock={"CUP": 5}, transit_hours=6.0),
        facts("WH-NEXT", stock={"CUP": 5}, transit_hours=24.0),
    ]
    # WHEN the order is allocated again without it
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW, exclude=frozenset({"WH-BEST"}))
    # THEN the next-best ships, and the excluded one is reported with its reason
    assert decision.shipments[0].warehouse_id == "WH-NEXT"
    assert candidate(decision, "WH-BEST").rejected == ("excluded",)
    assert candidate(decision, "WH-NEXT").factors["delivery"] == 1.0  # judged only against the remaining ones


def test_a_split_uses_the_fewest_packages_even_when_greedy_by_score_would_need_three():
    # GIVEN 10 cups wanted, nobody holds 10, and the two best-scored hold only 4 each
    warehouses = [
        facts("WH-A", stock={"CUP": 4}, transit_hours=12.0),
        facts("WH-B", stock={"CUP": 4}, transit_hours=18.0),
        facts("WH-C", stock={"CUP": 6}, transit_hours=48.0),
    ]
    # WHEN the order is allocated
    decision = decide_allocation({"CUP": 10}, HANGZHOU, warehouses, RULES, NOW)
    # THEN two packages suffice: the best-scored pair that holds 10 (A+C beats B+C), A first
    assert decision.refusal is None
    assert decision.split
    assert decision.shipments == (Shipment("WH-A", (("CUP", 4),)), Shipment("WH-C", (("CUP", 6),)))
    assert all(c.rejected == ("insufficient_stock",) for c in decision.candidates)


def test_a_split_takes_each_skus_units_from_the_better_scored_warehouse_first():
    # GIVEN neither warehouse holds both SKUs in full, and WH-NEAR scores better
    warehouses = [
        facts("WH-FAR", stock={"CUP": 4, "LID": 3}, transit_hours=48.0),
        facts("WH-NEAR", stock={"CUP": 3, "LID": 4}, transit_hours=12.0),
    ]
    decision = decide_allocation({"CUP": 5, "LID": 5}, HANGZHOU, warehouses, RULES, NOW)
    # THEN WH-NEAR gives all it has and WH-FAR tops each SKU up
    assert decision.shipments == (
        Shipment("WH-NEAR", (("CUP", 3), ("LID", 4))),
        Shipment("WH-FAR", (("CUP", 2), ("LID", 1))),
    )


def test_among_equally_scored_splits_the_smallest_warehouse_ids_win():
    warehouses = [facts(wid, stock={"CUP": 5}) for wid in ("WH-C", "WH-B", "WH-A")]
    decision = decide_allocation({"CUP": 8}, HANGZHOU, warehouses, RULES, NOW)
    assert [s.warehouse_id for s in decision.shipments] == ["WH-A", "WH-B"]
    assert decision.shipments[0].lines == (("CUP", 5),)


def test_a_split_never_uses_more_warehouses_than_the_rules_allow():
    # GIVEN 9 cups spread 3-3-3 and splits limited to two packages
    warehouses = [facts(wid, stock={"CUP": 3}) for wid in ("WH-A", "WH-B", "WH-C")]
    rules = AllocationRules(max_split_warehouses=2)
    decision = decide_allocation({"CUP": 9}, HANGZHOU, warehouses, rules, NOW)
    # THEN it is refused, and the detail says the stock exists but not within the limit
    assert decision.refusal == "insufficient_stock"
    assert decision.shipments == ()
    assert "no split over at most 2" in decision.detail
    # AND with the default limit of three it is allocated over all three
    assert len(decide_allocation({"CUP": 9}, HANGZHOU, warehouses, RULES, NOW).shipments) == 3


# --- refusals ----------------------------------------------------------------------------------------------


def test_insufficient_stock_even_split_names_each_short_sku_and_its_shortfall():
    warehouses = [
        facts("WH-A", stock={"CUP": 4, "LID": 9}),
        facts("WH-B", stock={"CUP": 3, "BOWL": 1}),
        facts("WH-SICHUAN", regions=("CN/四川",), stock={"CUP": 100, "BOWL": 100}),  # not counted: cannot ship
    ]
    decision = decide_allocation({"CUP": 10, "LID": 2, "BOWL": 3}, HANGZHOU, warehouses, RULES, NOW)
    assert decision.refusal == "insufficient_stock"
    assert "BOWL short by 2" in decision.detail
    assert "CUP short by 3" in decision.detail
    assert "LID" not in decision.detail


def test_no_covering_warehouse_is_refused_as_such_and_so_is_an_unknown_country():
    warehouses = [facts("WH-US", regions=("US",), stock={"CUP": 5})]
    to_china = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    to_nowhere = decide_allocation({"CUP": 1}, Destination(country=None, province=None), warehouses, RULES, NOW)
    assert to_china.refusal == "no_warehouse_covers_destination"
    assert to_nowhere.refusal == "no_warehouse_covers_destination"
    assert [c.warehouse_id for c in to_china.candidates] == ["WH-US"]


def test_every_covering_warehouse_over_capacity_or_excluded_is_capacity_exhausted():
    warehouses = [
        facts("WH-FULL", daily_capacity=10, allocated_today=12, stock={"CUP": 5}),
        facts("WH-FAILED", stock={"CUP": 5}),
    ]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW, exclude=frozenset({"WH-FAILED"}))
    assert decision.refusal == "capacity_exhausted"


def test_every_covering_warehouse_excluded_is_reported_as_all_excluded():
    warehouses = [facts("WH-A", stock={"CUP": 5}), facts("WH-B", stock={"CUP": 5})]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW, exclude=frozenset({"WH-A", "WH-B"}))
    assert decision.refusal == "all_warehouses_excluded"
    assert "WH-A, WH-B" in decision.detail


def test_an_empty_demand_has_nothing_to_allocate():
    decision = decide_allocation({"CUP": 0}, HANGZHOU, [facts("WH-A", stock={"CUP": 5})], RULES, NOW)
    assert decision.refusal == "nothing_to_allocate"
    assert decision.shipments == ()


# --- stale data --------------------------------------------------------------------------------------------


def test_stale_sources_lower_confidence_but_the_order_is_still_allocated():
    # GIVEN labour data two hours old at one warehouse and error data never fetched at another
    warehouses = [
        facts("WH-A", stock={"CUP": 5}, as_of={"labour": NOW - timedelta(hours=2)}),
        facts("WH-B", stock={"CUP": 5}, as_of={"error": None}),
    ]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    # THEN both sources are flagged, confidence drops by their weights, and the decision stands
    assert decision.stale_sources == ("labour", "error")
    assert decision.confidence == pytest.approx(0.7)
    assert decision.refusal is None
    assert "stale data: labour, error" in decision.detail


def test_data_exactly_as_old_as_allowed_is_still_fresh_and_a_missing_source_is_stale():
    warehouses = [
        facts("WH-A", stock={"CUP": 5}, as_of={"stock": NOW - RULES.max_source_age}),
        replace(facts("WH-B", stock={"CUP": 5}), as_of={"stock": NOW, "delivery": NOW}),  # no labour, no error
    ]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    assert decision.stale_sources == ("labour", "error")


def test_confidence_below_the_minimum_refuses_as_stale_data_and_still_reports_the_candidates():
    # GIVEN stock and delivery feeds both older than allowed (0.4 + 0.3 of the weight)
    old = NOW - timedelta(hours=1)
    warehouses = [facts("WH-A", stock={"CUP": 5}, as_of={"stock": old, "delivery": old})]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    # THEN confidence 0.3 < 0.5: refused, with the scores still visible
    assert decision.refusal == "stale_data"
    assert decision.shipments == ()
    assert decision.confidence == pytest.approx(0.3)
    assert decision.candidates[0].eligible and decision.candidates[0].score > 0


def test_confidence_exactly_at_the_minimum_is_enough():
    # GIVEN delivery and labour stale: 1 - 0.3 - 0.2 is 0.5 up to float noise
    old = NOW - timedelta(hours=1)
    warehouses = [facts("WH-A", stock={"CUP": 5}, as_of={"delivery": old, "labour": old})]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    assert decision.refusal is None
    assert decision.confidence == pytest.approx(0.5)


def test_stale_data_of_a_warehouse_that_cannot_ship_does_not_lower_confidence():
    never = {source: None for source in SOURCES}
    warehouses = [
        facts("WH-SICHUAN", regions=("CN/四川",), stock={"CUP": 5}, as_of=never),
        facts("WH-FULL", daily_capacity=1, allocated_today=1, stock={"CUP": 5}, as_of=never),
        facts("WH-OK", stock={"CUP": 5}),
    ]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    assert decision.stale_sources == ()
    assert decision.confidence == 1.0


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="aware"):
        decide_allocation({"CUP": 1}, HANGZHOU, [facts("WH-A", stock={"CUP": 5})], RULES, NOW.replace(tzinfo=None))


# --- the stored explanation --------------------------------------------------------------------------------


def test_candidates_are_listed_eligible_first_then_by_score_then_id():
    warehouses = [
        facts("WH-NO-STOCK", stock={}, transit_hours=1.0),
        facts("WH-SLOW", stock={"CUP": 5}, transit_hours=48.0),
        facts("WH-FAST", stock={"CUP": 5}, transit_hours=12.0),
        facts("WH-ELSEWHERE", regions=("US",), stock={"CUP": 5}),
    ]
    decision = decide_allocation({"CUP": 1}, HANGZHOU, warehouses, RULES, NOW)
    assert [c.warehouse_id for c in decision.candidates] == ["WH-FAST", "WH-SLOW", "WH-NO-STOCK", "WH-ELSEWHERE"]


def test_the_decision_as_a_dict_is_json_and_rounds_floats_to_four_places():
    warehouses = [
        facts("WH-A", stock={"CUP": 4}, transit_hours=7.0),
        facts("WH-B", stock={"CUP": 4}, transit_hours=9.0, as_of={"error": None}),
    ]
    decision = decide_allocation({"CUP": 6}, HANGZHOU, warehouses, RULES, NOW)
    stored = json.loads(json.dumps(decision.as_dict()))
    assert stored["split"] is True
    assert stored["shipments"] == [
        {"warehouse_id": "WH-A", "lines": [{"sku": "CUP", "units": 4}]},
        {"warehouse_id": "WH-B", "lines": [{"sku": "CUP", "units": 2}]},
    ]
    assert stored["candidates"][1]["factors"]["delivery"] == 0.7778  # 7 / 9
    assert stored["candidates"][1]["rejected"] == ["insufficient_stock"]
    assert stored["weights"] == {"stock": 0.4, "delivery": 0.3, "labour": 0.2, "error": 0.1}
    assert (stored["confidence"], stored["stale_sources"], stored["refusal"]) == (0.9, ["error"], None)
