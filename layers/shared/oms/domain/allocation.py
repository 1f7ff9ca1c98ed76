"""The allocation engine: which warehouse (or warehouses) ship an order, and why (SPEC C5).

`decide_allocation(demand, destination, facts, rules, now, exclude)` is a pure function of what the
services gathered about each warehouse (`WarehouseFacts`); it returns an `AllocationDecision` that is stored
on the order as the explanation of the choice, whether it allocated or refused.

How the decision is made:

1. **Nothing to do.** An empty demand is refused with `nothing_to_allocate`.
2. **Hard filters**, each failure recorded in the candidate's `rejected` (a warehouse may collect several):
   - `excluded`: listed in `exclude`, i.e. it already failed for this order (say its WMS did not confirm the
     pre-reservation within 5 s), so the next-best one gets its turn;
   - `not_covered`: the warehouse does not serve the destination (see `Warehouse.covers`);
   - `over_capacity`: `allocated_today >= daily_capacity`;
   - `insufficient_stock`: it cannot fill the WHOLE demand on its own.
   A warehouse passing all four is *eligible*. Warehouses that pass the first three are the *contenders*:
   they get factor scores and may take part in a split.
3. **Factors**, each in [0, 1], computed for the contenders only (others get `{}` and score 0):
   - `stock`: for each demanded SKU, the cover left after this order (`available - qty`, floored at 0)
     divided by the best such cover among the contenders (1.0 when the best is 0 or less: nobody has spare,
     so nobody is better); the factor is the minimum over the SKUs, as the scarcest SKU is the one that runs
     out first;
   - `delivery`: fastest known transit time among the contenders / this warehouse's (1.0 for the fastest,
     0 when unknown: an unknown route must not beat a measured one);
   - `labour`: `1 - min(labour_load, 1)` (0.5 when unknown);
   - `error`: `1 - min(error_rate / error_rate_ceiling, 1)` (0.5 when unknown), so a rate at or above the
     ceiling scores 0.
   Out-of-range inputs (negative loads, rates or transit times) are clamped, so factors stay in [0, 1].
   `score = sum(weight x factor)` with the rules' `AllocationWeights`.
4. **Stale data.** A source (`stock`, `delivery`, `labour`, `error`) is stale when its `as_of` is missing,
   None or older than `now - max_source_age` for ANY contender. The data is still used, but
   `confidence = 1 - sum of the stale sources' weights`; below `min_confidence` the order is refused with
   `stale_data` (candidates still reported) rather than allocated on data nobody trusts.
5. **Choice.** If any warehouse is eligible: ONE shipment from the highest score (ties: lower
   `warehouse_id`). Otherwise the split with the FEWEST packages: the smallest k in
   2..`max_split_warehouses` for which some k contenders together hold the demand; among those subsets the
   highest total score wins (ties: the lexicographically smallest sorted ids). Each SKU's units are taken
   from the subset's warehouses in descending score order; a warehouse left with no units is dropped.
   Shipments are listed in that same score order, the main one first.
6. **Refusals** (machine-readable `refusal`, human `detail`): `no_warehouse_covers_destination` (also when
   the destination country is unknown), `all_warehouses_excluded` (every covering warehouse was excluded),
   `capacity_exhausted` (every covering one is over capacity or excluded), `stale_data`, and
   `insufficient_stock` (even a split cannot fill it; the detail names each short SKU and its shortfall).

`candidates` lists every warehouse in `facts`, sorted by (eligible first, score desc, warehouse_id).
Scores are compared rounded to 9 decimals, so float noise never decides a tie.

Pure domain: stdlib only. It runs once per order over a handful of warehouses and SKUs; the split search
tries subsets by increasing size and stops at the first size that works.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations

from oms.domain.inventory import Demand

SOURCES = ("stock", "delivery", "labour", "error")

EXCLUDED = "excluded"
NOT_COVERED = "not_covered"
OVER_CAPACITY = "over_capacity"
INSUFFICIENT_STOCK = "insufficient_stock"

NOTHING_TO_ALLOCATE = "nothing_to_allocate"
NO_WAREHOUSE_COVERS_DESTINATION = "no_warehouse_covers_destination"
ALL_WAREHOUSES_EXCLUDED = "all_warehouses_excluded"
CAPACITY_EXHAUSTED = "capacity_exhausted"
STALE_DATA = "stale_data"

UNKNOWN_LABOUR_FACTOR = 0.5
UNKNOWN_ERROR_FACTOR = 0.5
_SCORE_DIGITS = 9
_WEIGHT_TOLERANCE = 1e-6

# Longest first, so "广西壮族自治区" loses "壮族自治区" and not just "自治区".
_CJK_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市")
_LATIN_SUFFIX = re.compile(r"\s+(?:province|sheng)$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")  # \s covers the full-width space U+3000 too


def region_name(province: str) -> str:
    """A province name reduced to the part every spelling shares, so "浙江省" and "浙江" match.

    Platforms and warehouse configs write the same province differently: "浙江省", "浙江", "浙江 省",
    "广西壮族自治区", "北京市", "香港特别行政区", "Zhejiang Province", "Zhejiang Sheng". This strips
    surrounding and inner spaces (half-width and full-width) and one administrative suffix: 维吾尔自治区,
    壮族自治区, 回族自治区, 特别行政区, 自治区, 省, 市, or the Latin " Province" / " Sheng" (any case).
    A name that is nothing but a suffix is kept as it is. Case is preserved; `Warehouse.covers` compares
    case-insensitively. It does not translate: "Zhejiang" and "浙江" stay different names.
    """
    name = _LATIN_SUFFIX.sub("", province.strip())
    name = _SPACES.sub("", name)
    for suffix in _CJK_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _country_code(country: str | None) -> str | None:
    if country is None:
        return None
    return country.strip().upper() or None


def _comparable_region_key(key: str) -> str:
    """A region key ("CN" or "CN/浙江省") in the form coverage compares: country upper, province normalised."""
    country, _, province = key.partition("/")
    country = (_country_code(country) or "").casefold()
    province_name = region_name(province) if province else ""
    return f"{country}/{province_name.casefold()}" if province_name else country


@dataclass(frozen=True)
class Destination:
    """Where an order goes, as far as allocation cares: country code and province."""

    country: str | None
    province: str | None

    def region_keys(self) -> tuple[str, ...]:
        """Region keys from most to least specific, e.g. ("CN/浙江", "CN"); () when the country is unknown."""
        country = _country_code(self.country)
        if country is None:
            return ()
        province = region_name(self.province) if self.province else ""
        return (f"{country}/{province}", country) if province else (country,)


@dataclass(frozen=True)
class Warehouse:
    """A warehouse and the regions it serves: "CN" for a whole country, "CN/浙江" for one province."""

    warehouse_id: str
    name: str
    regions: frozenset[str]
    daily_capacity: int

    def covers(self, destination: Destination) -> bool:
        """True when one of its regions is the destination's country or province (spellings normalised)."""
        served = {_comparable_region_key(region) for region in self.regions}
        return any(_comparable_region_key(key) in served for key in destination.region_keys())


@dataclass(frozen=True)
class WarehouseFacts:
    """Everything allocation knows about one warehouse for one order, as fetched by the services."""

    warehouse: Warehouse
    available: dict[str, int]
    transit_hours: float | None
    labour_load: float | None
    error_rate: float | None
    allocated_today: int
    as_of: dict[str, datetime | None]

    @property
    def warehouse_id(self) -> str:
        return self.warehouse.warehouse_id


@dataclass(frozen=True)
class AllocationWeights:
    """How much each factor counts; non-negative and summing to 1 so a score stays in [0, 1]."""

    stock: float = 0.4
    delivery: float = 0.3
    labour: float = 0.2
    error: float = 0.1

    def __post_init__(self) -> None:
        weights = self.as_dict()
        for source, weight in weights.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"allocation weight {source!r} must be a non-negative number, got {weight!r}")
        total = sum(weights.values())
        if abs(total - 1.0) > _WEIGHT_TOLERANCE:
            raise ValueError(
                f"allocation weights must sum to 1, got {total:.6f} "
                f"(stock {self.stock}, delivery {self.delivery}, labour {self.labour}, error {self.error})"
            )

    def of(self, source: str) -> float:
        """The weight of one source by its name in `SOURCES`."""
        return self.as_dict()[source]

    def as_dict(self) -> dict[str, float]:
        return {source: float(getattr(self, source)) for source in SOURCES}


@dataclass(frozen=True)
class AllocationRules:
    """The tunable rules of allocation; loaded from configuration so they change without a deploy."""

    weights: AllocationWeights = AllocationWeights()
    max_source_age: timedelta = timedelta(minutes=30)
    min_confidence: float = 0.5
    error_rate_ceiling: float = 0.05
    max_split_warehouses: int = 3

    def __post_init__(self) -> None:
        if self.max_source_age <= timedelta(0):
            raise ValueError(f"max_source_age must be positive, got {self.max_source_age}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be within [0, 1], got {self.min_confidence}")
        if not self.error_rate_ceiling > 0:
            raise ValueError(f"error_rate_ceiling must be positive, got {self.error_rate_ceiling}")
        if self.max_split_warehouses < 1:
            raise ValueError(f"max_split_warehouses must be at least 1, got {self.max_split_warehouses}")


@dataclass(frozen=True)
class CandidateScore:
    """One warehouse as the decision saw it: its factors, its score, and why it was rejected if it was."""

    warehouse_id: str
    factors: dict[str, float]
    score: float
    eligible: bool
    rejected: tuple[str, ...]


@dataclass(frozen=True)
class Shipment:
    """What one warehouse ships: (warehouse SKU, units) pairs sorted by SKU."""

    warehouse_id: str
    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class AllocationDecision:
    """The outcome for one order: shipments, or a refusal with its reason, and the scores behind it."""

    shipments: tuple[Shipment, ...]
    refusal: str | None
    detail: str
    candidates: tuple[CandidateScore, ...]
    weights: AllocationWeights
    confidence: float
    stale_sources: tuple[str, ...]

    @property
    def split(self) -> bool:
        return len(self.shipments) > 1

    def as_dict(self) -> dict:
        """JSON-able form stored on the order (floats rounded to 4 places)."""
        return {
            "shipments": [
                {"warehouse_id": s.warehouse_id, "lines": [{"sku": sku, "units": units} for sku, units in s.lines]}
                for s in self.shipments
            ],
            "split": self.split,
            "refusal": self.refusal,
            "detail": self.detail,
            "candidates": [
                {
                    "warehouse_id": c.warehouse_id,
                    "factors": {name: round(value, 4) for name, value in c.factors.items()},
                    "score": round(c.score, 4),
                    "eligible": c.eligible,
                    "rejected": list(c.rejected),
                }
                for c in self.candidates
            ],
            "weights": {name: round(value, 4) for name, value in self.weights.as_dict().items()},
            "confidence": round(self.confidence, 4),
            "stale_sources": list(self.stale_sources),
        }


@dataclass
class _Assessment:
    """Working state of one warehouse while deciding (mutable, never leaves this module)."""

    facts: WarehouseFacts
    rejected: list[str] = field(default_factory=list)
    factors: dict[str, float] = field(default_factory=dict)
    score: float = 0.0

    @property
    def warehouse_id(self) -> str:
        return self.facts.warehouse_id

    @property
    def contender(self) -> bool:
        return not any(reason in self.rejected for reason in (EXCLUDED, NOT_COVERED, OVER_CAPACITY))

    @property
    def eligible(self) -> bool:
        return not self.rejected

    def units(self, sku: str) -> int:
        return max(self.facts.available.get(sku, 0), 0)

    def rank(self) -> tuple[float, str]:
        """Sort key: best score first, then lower id."""
        return (-round(self.score, _SCORE_DIGITS), self.warehouse_id)


def _clamp(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _stock_factor(candidate: _Assessment, demand: Demand, best_cover: dict[str, int]) -> float:
    per_sku = []
    for sku, quantity in demand.items():
        best = best_cover[sku]
        cover = max(candidate.units(sku) - quantity, 0)
        per_sku.append(1.0 if best <= 0 else cover / best)
    return min(per_sku)


def _delivery_factor(transit_hours: float | None, fastest: float | None) -> float:
    if transit_hours is None or fastest is None:
        return 0.0
    hours = max(transit_hours, 0.0)
    if hours <= fastest:
        return 1.0
    return fastest / hours


def _labour_factor(labour_load: float | None) -> float:
    return UNKNOWN_LABOUR_FACTOR if labour_load is None else 1.0 - _clamp(labour_load)


def _error_factor(error_rate: float | None, ceiling: float) -> float:
    return UNKNOWN_ERROR_FACTOR if error_rate is None else 1.0 - _clamp(max(error_rate, 0.0) / ceiling)


def _score_contenders(contenders: list[_Assessment], demand: Demand, rules: AllocationRules) -> None:
    weights = rules.weights
    best_cover = {sku: max(c.units(sku) - qty for c in contenders) for sku, qty in demand.items()}
    known_transit = [max(c.facts.transit_hours, 0.0) for c in contenders if c.facts.transit_hours is not None]
    fastest = min(known_transit) if known_transit else None
    for candidate in contenders:
        candidate.factors = {
            "stock": _stock_factor(candidate, demand, best_cover),
            "delivery": _delivery_factor(candidate.facts.transit_hours, fastest),
            "labour": _labour_factor(candidate.facts.labour_load),
            "error": _error_factor(candidate.facts.error_rate, rules.error_rate_ceiling),
        }
        candidate.score = sum(weights.of(source) * candidate.factors[source] for source in SOURCES)


def _is_stale(fetched_at: datetime | None, oldest_fresh: datetime, warehouse_id: str, source: str) -> bool:
    if fetched_at is None:
        return True
    if fetched_at.tzinfo is None:
        raise ValueError(f"as_of of {source!r} for warehouse {warehouse_id!r} is naive: use aware datetimes")
    return fetched_at < oldest_fresh


def _stale_sources(contenders: list[_Assessment], now: datetime, max_age: timedelta) -> tuple[str, ...]:
    oldest_fresh = now - max_age
    return tuple(
        source
        for source in SOURCES
        if any(_is_stale(c.facts.as_of.get(source), oldest_fresh, c.warehouse_id, source) for c in contenders)
    )


def _covers_demand(subset: Sequence[_Assessment], demand: Demand) -> bool:
    return all(sum(c.units(sku) for c in subset) >= qty for sku, qty in demand.items())


def _fewest_package_subset(contenders: list[_Assessment], demand: Demand, max_size: int) -> list[_Assessment] | None:
    """The smallest group of contenders that holds the demand together; best total score, then smallest ids."""
    by_id = sorted(contenders, key=lambda c: c.warehouse_id)
    for size in range(2, min(max_size, len(by_id)) + 1):
        fitting = [subset for subset in combinations(by_id, size) if _covers_demand(subset, demand)]
        if fitting:
            # combinations() yields id-sorted subsets in lexicographic order, so the first maximum
            # is also the one with the smallest ids.
            best = max(fitting, key=lambda subset: round(sum(c.score for c in subset), _SCORE_DIGITS))
            return list(best)
    return None


def _split_shipments(subset: list[_Assessment], demand: Demand) -> tuple[Shipment, ...]:
    ordered = sorted(subset, key=_Assessment.rank)
    taken: dict[str, dict[str, int]] = {c.warehouse_id: {} for c in ordered}
    for sku, quantity in demand.items():
        remaining = quantity
        for candidate in ordered:
            units = min(remaining, candidate.units(sku))
            if units > 0:
                taken[candidate.warehouse_id][sku] = units
                remaining -= units
    return tuple(
        Shipment(warehouse_id=c.warehouse_id, lines=tuple(sorted(taken[c.warehouse_id].items())))
        for c in ordered
        if taken[c.warehouse_id]
    )


def _shortfall_detail(contenders: list[_Assessment], demand: Demand, max_split: int) -> str:
    shortfalls = {
        sku: qty - sum(c.units(sku) for c in contenders)
        for sku, qty in sorted(demand.items())
        if sum(c.units(sku) for c in contenders) < qty
    }
    if shortfalls:
        short = ", ".join(f"{sku} short by {units}" for sku, units in shortfalls.items())
        return f"not enough stock across {len(contenders)} eligible warehouse(s): {short}"
    return (
        f"the stock exists across {len(contenders)} warehouses, but no split over at most "
        f"{max_split} warehouse(s) holds the whole order"
    )


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def decide_allocation(
    demand: Demand,
    destination: Destination,
    facts: Sequence[WarehouseFacts],
    rules: AllocationRules,
    now: datetime,
    exclude: frozenset[str] = frozenset(),
) -> AllocationDecision:
    """Choose the warehouse(s) that ship `demand` to `destination`; see the module docstring for the rules."""
    if now.tzinfo is None:
        raise ValueError("decide_allocation needs an aware `now` to judge how old the data is")
    negative = sorted(sku for sku, qty in demand.items() if qty < 0)
    if negative:
        raise ValueError(f"negative demand for {', '.join(negative)}")
    demand = {sku: qty for sku, qty in demand.items() if qty > 0}
    weights = rules.weights

    def decision(refusal: str | None, detail: str, shipments=(), assessed=(), stale=()) -> AllocationDecision:
        ordered = sorted(assessed, key=lambda c: (not c.eligible, *c.rank()))
        return AllocationDecision(
            shipments=tuple(shipments),
            refusal=refusal,
            detail=detail,
            candidates=tuple(
                CandidateScore(
                    warehouse_id=c.warehouse_id,
                    factors=dict(c.factors),
                    score=c.score,
                    eligible=c.eligible,
                    rejected=tuple(c.rejected),
                )
                for c in ordered
            ),
            weights=weights,
            confidence=max(0.0, 1.0 - sum(weights.of(source) for source in stale)),
            stale_sources=tuple(stale),
        )

    if not demand:
        return decision(NOTHING_TO_ALLOCATE, "the order has no units to allocate")

    assessed = [_Assessment(facts=f) for f in facts]
    for candidate in assessed:
        warehouse = candidate.facts.warehouse
        if candidate.warehouse_id in exclude:
            candidate.rejected.append(EXCLUDED)
        if not warehouse.covers(destination):
            candidate.rejected.append(NOT_COVERED)
        if candidate.facts.allocated_today >= warehouse.daily_capacity:
            candidate.rejected.append(OVER_CAPACITY)
        if any(candidate.units(sku) < qty for sku, qty in demand.items()):
            candidate.rejected.append(INSUFFICIENT_STOCK)

    covering = [c for c in assessed if NOT_COVERED not in c.rejected]
    if not covering:
        keys = destination.region_keys()
        where = keys[0] if keys else "an unknown country"
        return decision(NO_WAREHOUSE_COVERS_DESTINATION, f"no warehouse covers {where}", assessed=assessed)
    contenders = [c for c in covering if c.contender]
    if not contenders:
        if all(EXCLUDED in c.rejected for c in covering):
            ids = ", ".join(sorted(c.warehouse_id for c in covering))
            detail = f"every covering warehouse already failed for this order: {ids}"
            return decision(ALL_WAREHOUSES_EXCLUDED, detail, assessed=assessed)
        return decision(
            CAPACITY_EXHAUSTED,
            f"all {len(covering)} covering warehouse(s) are at their daily capacity or excluded",
            assessed=assessed,
        )

    _score_contenders(contenders, demand, rules)
    stale = _stale_sources(contenders, now, rules.max_source_age)
    confidence = 1.0 - sum(weights.of(source) for source in stale)
    stale_note = f"; stale data: {', '.join(stale)} (confidence {_fmt(max(confidence, 0.0))})" if stale else ""
    # The tolerance keeps float noise in the weight sum (e.g. 1 - 0.3 - 0.2) from refusing at the threshold.
    if confidence < rules.min_confidence - 1e-9:
        return decision(
            STALE_DATA,
            f"confidence {_fmt(max(confidence, 0.0))} is below {_fmt(rules.min_confidence)}: "
            f"stale data from {', '.join(stale)}",
            assessed=assessed,
            stale=stale,
        )

    eligible = [c for c in contenders if c.eligible]
    if eligible:
        best = min(eligible, key=_Assessment.rank)
        shipment = Shipment(warehouse_id=best.warehouse_id, lines=tuple(sorted(demand.items())))
        return decision(
            None,
            f"{best.warehouse_id} fills the whole order (score {_fmt(best.score)}){stale_note}",
            shipments=(shipment,),
            assessed=assessed,
            stale=stale,
        )

    subset = _fewest_package_subset(contenders, demand, rules.max_split_warehouses)
    if subset is None:
        return decision(
            INSUFFICIENT_STOCK,
            _shortfall_detail(contenders, demand, rules.max_split_warehouses) + stale_note,
            assessed=assessed,
            stale=stale,
        )
    shipments = _split_shipments(subset, demand)
    ids = ", ".join(s.warehouse_id for s in shipments)
    return decision(
        None,
        f"no single warehouse holds the whole order; split over {len(shipments)}: {ids}{stale_note}",
        shipments=shipments,
        assessed=assessed,
        stale=stale,
    )
