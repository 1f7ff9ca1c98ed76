"""The address fingerprint the risk engine counts accounts by (SPEC section 3 and C6, rule 2).

Rule 2, "one shipping address used by 5 or more different accounts -> review", keeps the accounts seen
per fingerprint. `address_fingerprint(channel, ship_to)` gives that key; `canonical_address(ship_to)` gives
the normalized text an address key is made from, so a test or a reviewer can see why two orders matched.

Two kinds of fingerprint:

- **handle**: where the platform encrypts the receiver (`ship_to.encrypted`), its stable handle
  `ship_to.address_handle` (Taobao OAID, PDD / Douyin open address id or cipher index, the Kuaishou and JD
  address ciphertext), scoped by channel: an OAID means nothing on another platform. The ciphertext is
  never read as an address. An encrypted order WITHOUT a handle has no fingerprint (None): the caller
  cannot count accounts for that address, and must record the rule as not evaluated rather than passed.
  A platform that issues different handles per shop or app (Kuaishou encrypts per shop) gives one address
  several fingerprints: the rule undercounts there, it never merges two addresses.
- **address**: otherwise the normalized plain address, whatever the channel: one address used on Taobao
  and on Shopify is one address. No address line, or a line that is nothing but the region names, gives
  None: a district is not an address.

The value is sha256 of the kind and the text (plus the channel for a handle), as hex cut to 32 characters
(128 bits): stable across processes and releases, and no raw personal data reaches the aggregates table.

How a plain address is normalized, in this order:

1. `_fold` (every part): Unicode NFKC, then case folding: "３号楼" -> "3号楼", "ＡＢＣ" -> "abc".
2. `_expand_street_words` (line): Latin abbreviations spelled out: "St." -> "street", "Rd" -> "road",
   "Ave" -> "avenue", also Blvd, Dr, Ln, Ct, Pl.
3. `_units_last` (line): "Flat 8B", "Apt 8B", "Apartment 8B", "Unit 8B", "Suite 8B", "#8B" -> "unit 8b", moved to
   the end, so "Flat 8B, 10 Downing Street" = "10 Downing St., Apt 8B".
4. `_strip_separators` (every part): whitespace and punctuation removed, Chinese included (，。、－—·（）#):
   only letters, digits and combining marks stay: "文三路 100 号，3号楼" -> "文三路100号3号楼".
5. `_region_core` (province, city, district fields): the administrative suffix dropped:
   - province: the autonomous regions by full name (广西壮族自治区 -> 广西, 内蒙古自治区 -> 内蒙古,
     宁夏回族自治区 -> 宁夏, 新疆维吾尔自治区 -> 新疆, 西藏自治区 -> 西藏), US states to their code
     ("California" -> "ca", as Amazon writes it), else 特别行政区 / 自治区 / 省 / 市: "浙江省" -> "浙江";
   - city: 地区 / 市 / 盟: "杭州市" -> "杭州"; placeholders such as 市辖区 count as no city;
   - district: 区 / 县 / 市: "西湖区" -> "西湖", so a county renamed a district (临安市 -> 临安区) on one
     platform's region table and not yet on another's still matches. 朝阳区 and 朝阳县 both become 朝阳:
     they are told apart by their city, which stays in the text.
   A suffix is dropped only when two or more characters remain: in 城区, 新区, 矿区 it is part of the name.
   A city that repeats its province is dropped: municipalities ("北京市" + "北京市" -> "北京").
6. `_drop_region_repeats` (line): the province, city and district the line repeats at its start, in any of
   their spellings and any number of times, are dropped: with fields 北京 / 北京市 / 朝阳区,
   "北京市北京市朝阳区建国路88号" -> "建国路88号"; with 浙江省 / 杭州市 / 西湖区, "浙江杭州西湖区文三路100号"
   -> "文三路100号".
7. `_arabic_numerals` (line): Chinese numerals before 号 栋 幢 座 单元 门 室 房 楼 层 become digits: "三号楼"
   -> "3号楼", "五〇一室" -> "501室", "二十三栋" -> "23栋"; also a bare room number ending the line after one of
   them: "二门五〇一" -> "2门501". 门 counts only before a number or at the end, since in "三门峡" it is a name.
8. `_building_unit_room` (line): one form each. Building: 3号楼 / 3栋 / 3幢 / 3座 / B座, and "3号" followed
   by a unit or by a room that ends the line ("3号2单元", "3号501") -> "3栋", "b栋". Unit: 2单元 / 2门 ->
   "2单元". Room: 501室 / 501房 / 501号房 / 501 -> "501". A bare "3楼" is a floor and stays as it is.

The canonical text is province + city + district + line, concatenated: "浙江杭州西湖文三路100号3栋2单元501",
"北京朝阳建国路88号", "london10downingstreetunit8b".

Left out on purpose:
- name and phone: a ring ships to one address under many names and numbers.
- postal code: JD, PDD, Douyin and Kuaishou never send one, Taobao sometimes does, Shopify nearly always: a
  key that included it would split one address into two as soon as one channel leaves it out. It cannot be
  a tie-breaker either, since a fingerprint is an equality key with no ties to break; and province, city,
  district and street already say everything a postal code would.
- country: the same reason (a normalizer leaves it None for a country name it does not know), and the
  province and city already place the address.

Known limits: a district written only inside the line (a channel with no district field) keeps its suffix
and does not match the same address from a channel that fills the field; a Latin line repeating its city or
state at the end is not trimmed; state names are translated for the US only.

Pure domain: stdlib only.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from oms.domain.order import ShipTo

HANDLE = "handle"
ADDRESS = "address"
FINGERPRINT_LENGTH = 32  # hex characters of the sha256: 128 bits

# Full names of the autonomous regions -> the short name every platform also uses.
_AUTONOMOUS_REGIONS = {
    "广西壮族自治区": "广西",
    "内蒙古自治区": "内蒙古",
    "宁夏回族自治区": "宁夏",
    "新疆维吾尔自治区": "新疆",
    "西藏自治区": "西藏",
}
# US state names, as they look after folding and separator removal -> the code Amazon writes.
_US_STATES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca", "colorado": "co",
    "connecticut": "ct", "delaware": "de", "districtofcolumbia": "dc", "florida": "fl", "georgia": "ga",
    "hawaii": "hi", "idaho": "id", "illinois": "il", "indiana": "in", "iowa": "ia", "kansas": "ks",
    "kentucky": "ky", "louisiana": "la", "maine": "me", "maryland": "md", "massachusetts": "ma",
    "michigan": "mi", "minnesota": "mn", "mississippi": "ms", "missouri": "mo", "montana": "mt",
    "nebraska": "ne", "nevada": "nv", "newhampshire": "nh", "newjersey": "nj", "newmexico": "nm",
    "newyork": "ny", "northcarolina": "nc", "northdakota": "nd", "ohio": "oh", "oklahoma": "ok",
    "oregon": "or", "pennsylvania": "pa", "rhodeisland": "ri", "southcarolina": "sc", "southdakota": "sd",
    "tennessee": "tn", "texas": "tx", "utah": "ut", "vermont": "vt", "virginia": "va", "washington": "wa",
    "westvirginia": "wv", "wisconsin": "wi", "wyoming": "wy",
}
# Suffixes per level, longest first so "特别行政区" is not read as "...区".
_PROVINCE_SUFFIXES = ("特别行政区", "自治区", "省", "市")
_CITY_SUFFIXES = ("地区", "市", "盟")
_DISTRICT_SUFFIXES = ("区", "县", "市")
_MIN_CORE = 2  # characters a name keeps after losing its suffix: 城区 stays 城区
# What some region tables put in the city (or district) field when there is no such level.
_REGION_PLACEHOLDERS = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})

_STREET_WORDS = {
    "st": "street", "str": "street", "rd": "road", "ave": "avenue", "av": "avenue", "blvd": "boulevard",
    "dr": "drive", "ln": "lane", "ct": "court", "pl": "place",
}
_UNIT_WORDS = ("apartment", "apt", "flat", "unit", "suite", "ste")

_CHINESE_DIGITS = {
    "〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}
_CHINESE_MULTIPLIERS = {"十": 10, "百": 100, "千": 1000}
_NUMERALS = "".join(_CHINESE_DIGITS) + "".join(_CHINESE_MULTIPLIERS)
# Where a number names a building, unit, room or floor. 门 only before a number or at the end ("2门501"):
# in "三门峡" it is part of a name.
_NUMBER_MARKERS = ("号", "栋", "幢", "座", "单元", "室", "房", "楼", "层", f"门(?=[0-9{_NUMERALS}]|$)")

_STREET_WORD = re.compile(r"\b(" + "|".join(_STREET_WORDS) + r")\b\.?")
_LATIN_UNIT = re.compile(
    r"(?:\b(?:" + "|".join(_UNIT_WORDS) + r")\b\.?|(?<![0-9a-z])#)\s*#?\s*(\d+[a-z]?|[a-z]\d*)\b"
)
_CHINESE_NUMBER = re.compile(f"([{_NUMERALS}]+)(?=" + "|".join(_NUMBER_MARKERS) + ")")
_CHINESE_ROOM_NUMBER = re.compile(f"(?:(?<=单元)|(?<=[号栋幢座门楼层]))([{_NUMERALS}]+)$")  # "二门五〇一"
_BUILDING = re.compile(r"(\d+[a-z]?|(?<![a-z])[a-z])(?:号楼|号?栋|号?幢|号?座)")
_UNIT = re.compile(r"(\d+)(?:单元|门(?=\d|$))")
_ROOM = re.compile(r"(\d+[a-z]?)(?:号房|室|房)")
_NUMBERED_BUILDING = re.compile(r"(\d+[a-z]?)号(?=\d+单元|\d+[a-z]?$)")


@dataclass(frozen=True)
class AddressFingerprint:
    """The key rule 2 counts accounts under: a hash, never the address itself."""

    kind: Literal["handle", "address"]
    value: str


class _Level(NamedTuple):
    field: str
    suffixes: tuple[str, ...]
    full_names: Mapping[str, str]


_LEVELS = (
    _Level("province", _PROVINCE_SUFFIXES, {**_AUTONOMOUS_REGIONS, **_US_STATES}),
    _Level("city", _CITY_SUFFIXES, {}),
    _Level("district", _DISTRICT_SUFFIXES, {}),
)


def address_fingerprint(channel: str, ship_to: ShipTo) -> AddressFingerprint | None:
    """The fingerprint of an order's shipping address, or None when there is nothing stable to count by.

    `ship_to` is a `ShipTo` or anything with its attributes. Encrypted: the platform's handle scoped by
    `channel`, or None without a handle (accounts cannot be counted for that address). Plain: the
    canonical address, the same on every channel, or None without an address line.
    """
    if getattr(ship_to, "encrypted", False):
        handle = (getattr(ship_to, "address_handle", None) or "").strip()
        if not handle:
            return None
        scope = channel.strip().casefold()
        if not scope:
            raise ValueError("a handle fingerprint needs the channel that issued the handle")
        return _fingerprint(HANDLE, scope, handle)
    text = canonical_address(ship_to)
    return None if text is None else _fingerprint(ADDRESS, text)


def canonical_address(ship_to: ShipTo) -> str | None:
    """The normalized plain address a fingerprint is made from; None when encrypted or without a street line."""
    line = getattr(ship_to, "address", None)
    if getattr(ship_to, "encrypted", False) or not line:
        return None
    cores, spellings = _region_names(ship_to)
    line = _fold(line)
    line = _expand_street_words(line)
    line = _units_last(line)
    line = _strip_separators(line)
    line = _drop_region_repeats(line, spellings)
    line = _arabic_numerals(line)
    line = _building_unit_room(line)
    return "".join(cores) + line if line else None


def _fingerprint(kind: Literal["handle", "address"], *parts: str) -> AddressFingerprint:
    """sha256 of the kind and its parts, one per line, as hex cut to FINGERPRINT_LENGTH."""
    digest = hashlib.sha256("\n".join((kind, *parts)).encode("utf-8")).hexdigest()
    return AddressFingerprint(kind=kind, value=digest[:FINGERPRINT_LENGTH])


def _region_names(ship_to: ShipTo) -> tuple[list[str], list[str]]:
    """The region cores to put first (a municipality's city dropped) and every spelling the line may repeat."""
    cores: list[str] = []
    spellings: set[str] = set()
    for level in _LEVELS:
        name = _strip_separators(_fold(getattr(ship_to, level.field, None) or ""))
        if not name or name in _REGION_PLACEHOLDERS:
            continue
        core = _region_core(name, level)
        spellings |= _spellings(name, core, level)
        if level.field != "city" or not cores or cores[-1] != core:
            cores.append(core)
    return cores, sorted(spellings, key=len, reverse=True)


def _fold(text: str) -> str:
    """Unicode NFKC (full-width to half-width) and case folding."""
    return unicodedata.normalize("NFKC", text).casefold()


def _expand_street_words(line: str) -> str:
    """Latin street abbreviations spelled out: St. -> street, Rd -> road, Ave -> avenue."""
    return _STREET_WORD.sub(lambda match: _STREET_WORDS[match.group(1)], line)


def _units_last(line: str) -> str:
    """Flat / Apt / Unit / Suite / # numbers as "unit <id>", moved to the end of the line."""
    units = _LATIN_UNIT.findall(line)
    if not units:
        return line
    return " ".join([_LATIN_UNIT.sub(" ", line), *(f"unit {unit}" for unit in units)])


def _strip_separators(text: str) -> str:
    """Whitespace and punctuation removed: only letters, digits and combining marks stay."""
    return "".join(char for char in text if unicodedata.category(char)[0] in "LNM")


def _region_core(name: str, level: _Level) -> str:
    """A folded region name without its administrative suffix, when two or more characters remain."""
    if name in level.full_names:
        return level.full_names[name]
    for suffix in level.suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= _MIN_CORE:
            return name[: -len(suffix)]
    return name


def _spellings(name: str, core: str, level: _Level) -> set[str]:
    """How an address line may write one region: as the field does, bare, or with any suffix of its level."""
    full_names = {full for full, short in level.full_names.items() if short == core}
    return {name, core, *(core + suffix for suffix in level.suffixes), *full_names}


def _drop_region_repeats(line: str, spellings: list[str]) -> str:
    """The region names the line repeats at its start removed, however often and in whatever spelling."""
    # Dropping a bare name that begins a street ("西湖" of "西湖大道") is harmless: the region cores are put
    # back in front of the line. Latin lines put city and state after the street, so there a leading match
    # ("ca" of "canal street") would be part of the street: Latin spellings are left alone.
    spellings = [spelling for spelling in spellings if not spelling.isascii()]
    dropped = True
    while dropped:
        dropped = False
        for spelling in spellings:
            if line.startswith(spelling):
                line, dropped = line[len(spelling):], True
                break
    return line


def _arabic_numerals(line: str) -> str:
    """Chinese numerals before a building, unit, room or floor marker, or ending the line after one, as digits."""
    line = _CHINESE_NUMBER.sub(lambda match: _chinese_number(match.group(1)), line)
    return _CHINESE_ROOM_NUMBER.sub(lambda match: _chinese_number(match.group(1)), line)


def _chinese_number(numerals: str) -> str:
    """Chinese numerals as digits: 五〇一 -> 501 (digit by digit), 二十三 -> 23, 一百零五 -> 105 (with 十 百 千)."""
    if not any(char in _CHINESE_MULTIPLIERS for char in numerals):
        return "".join(str(_CHINESE_DIGITS[char]) for char in numerals)
    total = digit = 0
    for char in numerals:
        if char in _CHINESE_MULTIPLIERS:
            total += (digit or 1) * _CHINESE_MULTIPLIERS[char]
            digit = 0
        else:
            digit = _CHINESE_DIGITS[char]
    return str(total + digit)


def _building_unit_room(line: str) -> str:
    """One form each: building "3栋", unit "2单元", room "501" (号楼 幢 座 / 门 / 室 房 号房 unified)."""
    line = _BUILDING.sub(r"\1栋", line)
    line = _UNIT.sub(r"\1单元", line)
    line = _ROOM.sub(r"\1", line)
    return _NUMBERED_BUILDING.sub(r"\1栋", line)
