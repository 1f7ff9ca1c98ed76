"""Address fingerprint (risk rule 2): one address in many spellings is one key; encrypted ones use their handle."""

import hashlib
import re
from types import SimpleNamespace

import pytest
from oms.domain.address_fingerprint import (
    ADDRESS,
    FINGERPRINT_LENGTH,
    HANDLE,
    address_fingerprint,
    canonical_address,
)
from oms.domain.order import ShipTo

HANGZHOU = {
    "country": "CN",
    "province": "浙江省",
    "city": "杭州市",
    "district": "西湖区",
    "address": "文三路100号3号楼2单元501室",
    "postal_code": "310012",
    "name": "张三",
    "phone": "13800000000",
}
BEIJING = {"country": "CN", "province": "北京", "city": "北京市", "district": "朝阳区", "address": "建国路88号"}
LONDON = {"country": "GB", "city": "London", "address": "Flat 8B, 10 Downing Street", "postal_code": "SW1A 2AA"}


def plain(base: dict, **changes) -> ShipTo:
    """A plain (not encrypted) ship-to: `base` with `changes` applied."""
    return ShipTo(**(base | changes))


def encrypted(handle: str | None, **changes) -> ShipTo:
    """A ship-to as an encrypting platform sends it: ciphertext kept as received, plus its address handle."""
    fields = {
        "country": "CN",
        "province": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "address": "~c2VjcmV0LWFkZHJlc3M=~01~",
        "name": "~bmFtZQ==~01~",
        "phone": "$138$cGhvbmU=$01$",
        "encrypted": True,
        "address_handle": handle,
    }
    return ShipTo(**(fields | changes))


def fingerprint(ship_to: ShipTo, channel: str = "taobao"):
    return address_fingerprint(channel, ship_to)


# --- one address, many spellings ---------------------------------------------------------------------------

SAME_AS_HANGZHOU = {
    "full-width digits": {"address": "文三路１００号３号楼２单元５０１室"},
    "full-width space and Chinese punctuation": {"address": "文三路　100号，3号楼、2单元（501室）。"},
    "spaces, hyphens, dashes, middle dot, hash": {"address": " 文三路 100 号 - 3号楼 — 2单元 · 501室 #"},
    "region fields without suffixes": {"province": "浙江", "city": "杭州", "district": "西湖"},
    "line repeats province, city, district": {"address": "浙江省杭州市西湖区文三路100号3号楼2单元501室"},
    "line repeats them without suffixes": {"address": "浙江杭州西湖区文三路100号3号楼2单元501室"},
    "line repeats city and district only": {"address": "杭州市 西湖区 文三路100号3号楼2单元501室"},
    "building as 栋": {"address": "文三路100号3栋2单元501室"},
    "building as 幢": {"address": "文三路100号3幢2单元501室"},
    "building as 座": {"address": "文三路100号3座2单元501室"},
    "building as 号": {"address": "文三路100号3号2单元501室"},
    "unit as 门": {"address": "文三路100号3号楼2门501室"},
    "room as 房": {"address": "文三路100号3号楼2单元501房"},
    "room as 号房": {"address": "文三路100号3号楼2单元501号房"},
    "bare room number": {"address": "文三路100号3号楼2单元501"},
    "Chinese numerals with 〇": {"address": "文三路一百号三号楼二单元五〇一室"},
    "Chinese numerals with 零": {"address": "文三路100号三栋二门五零一"},
    "everything at once": {
        "province": "浙江",
        "city": "杭州",
        "address": "浙江省 杭州市 西湖区 文三路１００号 三幢 二门 五〇一房",
    },
    "another recipient and phone": {"name": "李四", "phone": "13900000000"},
    "no postal code": {"postal_code": None},
    "another postal code": {"postal_code": "310000"},
    "no country": {"country": None},
}


@pytest.mark.parametrize("changes", SAME_AS_HANGZHOU.values(), ids=SAME_AS_HANGZHOU.keys())
def test_one_address_written_differently_has_one_fingerprint(changes):
    # GIVEN the reference address and the same address written another way
    reference, variant = plain(HANGZHOU), plain(HANGZHOU, **changes)

    # WHEN both are fingerprinted
    expected, found = fingerprint(reference), fingerprint(variant)

    # THEN they are one address
    assert canonical_address(variant) == canonical_address(reference) == "浙江杭州西湖文三路100号3栋2单元501"
    assert found == expected
    assert found.kind == ADDRESS


@pytest.mark.parametrize(
    "variant",
    ["ＡＢＣ大厦Ｂ座1201室", "abc大厦 b栋 1201", "Abc 大厦 B幢 1201号房", "ABC大厦B号楼1201"],
)
def test_latin_letters_in_a_chinese_address_fold_to_one_form(variant):
    # GIVEN a tower with a Latin name and a lettered building, written in full width, mixed case, other markers
    reference, other = plain(HANGZHOU, address="abc大厦b座1201"), plain(HANGZHOU, address=variant)

    # WHEN both are fingerprinted
    # THEN they match
    assert canonical_address(other) == canonical_address(reference) == "浙江杭州西湖abc大厦b栋1201"
    assert fingerprint(other) == fingerprint(reference)


SAME_AS_BEIJING = {
    "municipality doubled in the fields": {"province": "北京市", "city": "北京市"},
    "municipality without suffixes": {"province": "北京", "city": "北京"},
    "province only": {"city": None},
    "city placeholder 市辖区": {"city": "市辖区"},
    "municipality doubled in the line": {"province": "北京市", "city": "北京市", "address": "北京市北京市朝阳区建国路88号"},
    "municipality and district in the line": {"address": "北京朝阳区建国路88号"},
    "district without suffix": {"district": "朝阳"},
}


@pytest.mark.parametrize("changes", SAME_AS_BEIJING.values(), ids=SAME_AS_BEIJING.keys())
def test_municipality_doubling_does_not_change_the_fingerprint(changes):
    # GIVEN a Beijing address as Taobao writes the region, and the same address written another way
    reference, variant = plain(BEIJING), plain(BEIJING, **changes)

    # WHEN both are fingerprinted
    expected, found = fingerprint(reference), fingerprint(variant)

    # THEN the city that repeats the province counts once
    assert canonical_address(variant) == canonical_address(reference) == "北京朝阳建国路88号"
    assert found == expected


@pytest.mark.parametrize(
    ("full_name", "short_name", "city", "district"),
    [
        ("广西壮族自治区", "广西", "南宁市", "青秀区"),
        ("内蒙古自治区", "内蒙古", "呼和浩特市", "新城区"),
        ("宁夏回族自治区", "宁夏", "银川市", "兴庆区"),
        ("新疆维吾尔自治区", "新疆", "乌鲁木齐市", "天山区"),
        ("西藏自治区", "西藏", "拉萨市", "城关区"),
        ("香港特别行政区", "香港", "香港", "中西区"),
    ],
)
def test_autonomous_region_and_sar_names_match_their_short_names(full_name, short_name, city, district):
    # GIVEN one address with the province written in full and in short, the full name also repeated in the line
    full = plain(BEIJING, province=full_name, city=city, district=district, address=f"{full_name}人民路1号")
    short = plain(BEIJING, province=short_name, city=city, district=district, address="人民路1号")

    # WHEN both are fingerprinted
    # THEN they match, and the canonical text carries the short name
    assert fingerprint(full) == fingerprint(short)
    assert canonical_address(full).startswith(short_name)
    assert canonical_address(full).endswith("人民路1号")


SAME_AS_LONDON = {
    "Apt and St.": {"address": "Apt 8B, 10 Downing St."},
    "Unit after the street": {"address": "10 Downing St, Unit 8B"},
    "hash after the street": {"address": "10 Downing Street #8B"},
    "Apartment with a hash": {"address": "10 Downing Street, Apartment #8B"},
    "lower case, dotted Apt.": {"address": "10 downing street apt. 8b"},
    "full-width upper case": {"address": "ＦＬＡＴ ８Ｂ， １０ ＤＯＷＮＩＮＧ ＳＴＲＥＥＴ"},
    "city in upper case": {"city": "LONDON"},
    "no postal code": {"postal_code": None},
}


@pytest.mark.parametrize("changes", SAME_AS_LONDON.values(), ids=SAME_AS_LONDON.keys())
def test_latin_flat_forms_and_street_abbreviations_match(changes):
    # GIVEN a London flat and the same flat written another way
    reference, variant = plain(LONDON), plain(LONDON, **changes)

    # WHEN both are fingerprinted
    expected, found = fingerprint(reference), fingerprint(variant)

    # THEN they are one address, the flat moved after the street
    assert canonical_address(variant) == canonical_address(reference) == "london10downingstreetunit8b"
    assert found == expected


@pytest.mark.parametrize(
    ("written", "abbreviated"),
    [
        ({"city": "London", "address": "3 Abbey Road"}, {"city": "London", "address": "3 Abbey Rd."}),
        (
            {"province": "New York", "city": "New York", "address": "725 Fifth Avenue"},
            {"province": "NY", "city": "New York", "address": "725 Fifth Ave"},
        ),
        (
            {"province": "California", "city": "San Francisco", "address": "1 Market Street, Suite 300"},
            {"province": "CA", "city": "San Francisco", "address": "Ste 300, 1 Market St"},
        ),
    ],
)
def test_street_words_and_state_names_match_their_abbreviations(written, abbreviated):
    # GIVEN one address spelled out and abbreviated (Shopify writes the state name, Amazon its code)
    # WHEN both are fingerprinted
    # THEN they match
    assert fingerprint(ShipTo(**written), "shopify") == fingerprint(ShipTo(**abbreviated), "amazon")


def test_a_plain_address_is_one_address_on_every_channel():
    # GIVEN the same plain address on Taobao (with an OAID it did not need to encrypt) and on Shopify
    taobao = plain(HANGZHOU, address_handle="oaid-taobao-1")
    shopify = plain(HANGZHOU, address="文三路100号 3栋 2单元 501", postal_code=None)

    # WHEN both are fingerprinted
    on_taobao, on_shopify = fingerprint(taobao, "taobao"), fingerprint(shopify, "shopify")

    # THEN it is one address, counted across channels
    assert on_taobao == on_shopify
    assert on_taobao.kind == ADDRESS


# --- different addresses ---------------------------------------------------------------------------------

DIFFERENT_FROM_HANGZHOU = {
    "another room": {"address": "文三路100号3号楼2单元502室"},
    "another building": {"address": "文三路100号4号楼2单元501室"},
    "another unit": {"address": "文三路100号3号楼1单元501室"},
    "another street number": {"address": "文三路101号3号楼2单元501室"},
    "another street": {"address": "文二路100号3号楼2单元501室"},
    "same street in another city": {"city": "宁波市"},
    "same street in another district": {"district": "拱墅区"},
    "a floor, not a building": {"address": "文三路100号3楼2单元501室"},
}


@pytest.mark.parametrize("changes", DIFFERENT_FROM_HANGZHOU.values(), ids=DIFFERENT_FROM_HANGZHOU.keys())
def test_genuinely_different_addresses_differ(changes):
    # GIVEN the reference address and a genuinely different one
    reference, other = plain(HANGZHOU), plain(HANGZHOU, **changes)

    # WHEN both are fingerprinted
    # THEN the fingerprints and the canonical texts differ
    assert fingerprint(other) != fingerprint(reference)
    assert canonical_address(other) != canonical_address(reference)


@pytest.mark.parametrize(
    ("here", "there"),
    [
        (
            {"province": "北京市", "city": "北京市", "district": "朝阳区"},
            {"province": "吉林省", "city": "长春市", "district": "朝阳区"},
        ),
        (
            {"province": "北京市", "city": "北京市", "district": "朝阳区"},
            {"province": "辽宁省", "city": "朝阳市", "district": "朝阳县"},
        ),
        (
            {"province": "辽宁省", "city": "朝阳市", "district": "朝阳县"},
            {"province": "辽宁省", "city": "朝阳市", "district": None},
        ),
    ],
    ids=["朝阳区 in 北京 vs 长春", "朝阳区 in 北京 vs 朝阳县", "朝阳县 vs its city without a district"],
)
def test_same_district_name_in_different_places_differs(here, there):
    # GIVEN the same street under two different places named 朝阳
    first, second = plain(BEIJING, **here), plain(BEIJING, **there)

    # WHEN both are fingerprinted
    # THEN they differ: the city tells them apart, and a county named like its city is not folded into it
    assert fingerprint(first) != fingerprint(second)
    assert canonical_address(first) != canonical_address(second)


def test_district_suffix_is_kept_when_it_is_part_of_the_name():
    # GIVEN a district named 城区 (the 区 is the name, not a suffix)
    ship_to = plain(BEIJING, province="山西省", city="晋城市", district="城区", address="凤台街1号")

    # WHEN it is canonicalized
    # THEN the district keeps its whole name
    assert canonical_address(ship_to) == "山西晋城城区凤台街1号"


def test_a_place_name_with_a_numeral_before_men_is_not_read_as_a_unit():
    # GIVEN a street named after 三门峡, with a unit written 2门
    ship_to = plain(HANGZHOU, address="三门峡路8号2门501")

    # WHEN it is canonicalized
    # THEN 三门 stays a name; "8号2门501" is building 8, unit 2, room 501
    assert canonical_address(ship_to) == "浙江杭州西湖三门峡路8栋2单元501"


# --- encrypted addresses -------------------------------------------------------------------------------------


def test_encrypted_address_uses_the_platform_handle():
    # GIVEN two Taobao orders to one OAID, with different ciphertexts, names and phones
    first = encrypted("oaid-abc")
    second = encrypted("oaid-abc", address="~b3RoZXItY2lwaGVy~01~", name="~b3RoZXI=~01~", phone="$139$eA==$01$")

    # WHEN both are fingerprinted
    found = fingerprint(first, "taobao")

    # THEN they share one handle fingerprint
    assert found == fingerprint(second, "taobao")
    assert found.kind == HANDLE
    assert found != fingerprint(encrypted("oaid-xyz"), "taobao")


def test_handle_fingerprints_are_scoped_by_channel():
    # GIVEN the same handle text on Taobao and on Pinduoduo
    ship_to = encrypted("H-0001")

    # WHEN it is fingerprinted for each channel
    # THEN the two do not match: a handle means nothing on another platform
    assert fingerprint(ship_to, "taobao") != fingerprint(ship_to, "pdd")
    assert fingerprint(ship_to, " Taobao ") == fingerprint(ship_to, "taobao")


def test_a_handle_never_matches_a_plain_address():
    # GIVEN a handle whose text happens to equal a plain address's canonical text
    text = canonical_address(plain(HANGZHOU))
    ship_to = encrypted(text)

    # WHEN both are fingerprinted
    # THEN the kinds keep them apart
    assert fingerprint(ship_to) != fingerprint(plain(HANGZHOU))


@pytest.mark.parametrize("handle", [None, "", "   "], ids=["none", "empty", "blank"])
def test_encrypted_without_a_handle_has_no_fingerprint(handle):
    # GIVEN an encrypted order with no handle, even one whose address field reads like plain text
    ship_to = encrypted(handle, address="文三路100号3号楼2单元501室")

    # WHEN it is fingerprinted
    # THEN there is none: the ciphertext (or mask) is never read as an address
    assert fingerprint(ship_to) is None
    assert canonical_address(ship_to) is None


def test_a_handle_needs_a_channel():
    # GIVEN an encrypted order with a handle
    # WHEN it is fingerprinted without a channel
    # THEN that is a programming error, not a silently global handle
    with pytest.raises(ValueError, match="channel"):
        address_fingerprint("  ", encrypted("oaid-abc"))


# --- no address, privacy, duck typing --------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{"address": None}, {"address": ""}, {"address": "，。 "}, {"address": "浙江省杭州市西湖区"}],
    ids=["none", "empty", "punctuation only", "region names only"],
)
def test_no_street_line_means_no_fingerprint(changes):
    # GIVEN a plain ship-to without anything below the district
    ship_to = plain(HANGZHOU, **changes)

    # WHEN it is fingerprinted
    # THEN there is none: a whole district is not one address
    assert canonical_address(ship_to) is None
    assert fingerprint(ship_to) is None


def test_fingerprint_is_a_short_hash_that_holds_no_personal_data():
    # GIVEN a plain address with recipient name and phone
    ship_to = plain(HANGZHOU)

    # WHEN it is fingerprinted
    found = fingerprint(ship_to)

    # THEN the value is the truncated sha256 of kind and canonical text, and nothing of the address shows
    canonical = canonical_address(ship_to)
    assert re.fullmatch(f"[0-9a-f]{{{FINGERPRINT_LENGTH}}}", found.value)
    assert found.value == hashlib.sha256(f"address\n{canonical}".encode()).hexdigest()[:32]
    for raw in (canonical, "文三路", "杭州", HANGZHOU["name"], HANGZHOU["phone"]):
        assert raw not in repr(found)


def test_handle_fingerprint_is_the_truncated_hash_of_channel_and_handle():
    # GIVEN an encrypted Taobao order with an OAID
    # WHEN it is fingerprinted
    found = fingerprint(encrypted("oaid-abc"), "taobao")

    # THEN the value is pinned, so stored aggregates keep matching across releases
    assert found.value == hashlib.sha256(b"handle\ntaobao\noaid-abc").hexdigest()[:32]
    assert "oaid-abc" not in repr(found)


def test_anything_with_ship_to_attributes_is_accepted():
    # GIVEN a plain object with the ShipTo attributes
    duck = SimpleNamespace(**(HANGZHOU | {"encrypted": False, "address_handle": None}))

    # WHEN it is fingerprinted
    # THEN it gives what the ShipTo model gives
    assert fingerprint(duck) == fingerprint(plain(HANGZHOU))
