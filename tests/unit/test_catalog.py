"""The packaged catalogue and regions load and hold up; bad files fail naming item and field."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import records
from records.catalog import (
    Catalog,
    categories,
    default_catalog_path,
    default_regions_path,
    load_catalog_file,
    load_regions_file,
)

# --------------------------------------------------------------------------- the packaged files


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog_file(default_catalog_path())


def test_default_paths_are_inside_the_package_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    package_dir = Path(records.__file__).resolve().parent
    for path in (default_catalog_path(), default_regions_path()):
        assert Path(str(path)).resolve().parent == package_dir / "data"
    assert len(load_catalog_file(default_catalog_path()).items) >= 32


def test_packaged_catalogue_is_large_and_well_formed(catalog: Catalog) -> None:
    assert catalog.version == 1
    assert len(catalog.items) >= 32
    assert len(categories(catalog)) >= 8
    codes = [item.code for item in catalog.items]
    assert len(codes) == len(set(codes))
    for item in catalog.items:
        assert any(m.mandatory for m in item.materials), item.code
        assert 2 <= len(item.materials) <= 7, item.code
        assert item.time_limit_days in {0, 3, 5, 10, 15, 20, 30}, item.code
        assert re.search(r"[\u4e00-\u9fff]", item.name_zh), item.code
        assert item.name_en.isascii() and item.name_en[0].isupper(), item.code


def test_packaged_catalogue_shares_a_handful_of_skills(catalog: Catalog) -> None:
    skills = {item.skill for item in catalog.items}
    assert skills == {"social_insurance", "medical", "household", "civil_affairs", "business", "housing", "employment"}


def test_packaged_catalogue_keeps_registration_bound_items_local(catalog: Catalog) -> None:
    local = {item.code for item in catalog.items if not item.cross_region}
    assert "HJ-001" in local  # 户口迁移 only where the household is registered
    assert 0 < len(local) < len(catalog.items) // 4


def test_packaged_catalogue_is_valid_utf8_json() -> None:
    raw = default_catalog_path().read_bytes()
    doc = json.loads(raw.decode("utf-8"))
    assert set(doc) == {"version", "categories", "items"}
    assert "社会保障卡申领" in raw.decode("utf-8")


def test_categories_lists_only_used_categories_in_file_order(catalog: Catalog) -> None:
    doc = _minimal_catalog()
    doc["categories"].append({"code": "empty", "name_zh": "空", "name_en": "Empty", "icon": "box"})
    small = Catalog.from_dict(doc)
    assert [c.code for c in categories(small)] == ["social_insurance", "household"]
    listed = [c.code for c in categories(catalog)]
    assert listed == [c.code for c in catalog.categories if c.code in listed]


def test_packaged_regions_follow_the_2026_holiday_notice() -> None:
    regions = load_regions_file(default_regions_path())
    assert len(regions) == 3
    assert len({r.code for r in regions}) == 3
    lunch = [r for r in regions if r.service_hours["lunch_service"]]
    assert len(lunch) == 1
    assert lunch[0].service_hours["weekdays"] == [{"start": "09:00", "end": "17:30"}]
    for region in regions:
        hours = region.service_hours
        assert hours["timezone"] == "Asia/Shanghai"
        assert {"2026-01-01", "2026-02-17", "2026-10-01"} <= set(hours["holidays"])
        assert len(hours["holidays"]) == 33  # 3 + 9 + 3 + 5 + 3 + 3 + 7 days off
        assert all(date.fromisoformat(d).weekday() >= 5 for d in hours["working_weekends"])


# --------------------------------------------------------------------------- validation


def _material(code: str, mandatory: bool = True) -> dict[str, Any]:
    return {"code": code, "name_zh": "居民身份证原件", "name_en": "Identity card", "mandatory": mandatory}


def _item(code: str, category: str = "social_insurance") -> dict[str, Any]:
    return {
        "code": code,
        "name_zh": "社会保障卡申领",
        "name_en": "Application for a social security card",
        "category": category,
        "skill": "social_insurance",
        "materials": [_material("id_card"), _material("photo", False)],
        "time_limit_days": 10,
        "cross_region": True,
    }


def _minimal_catalog() -> dict[str, Any]:
    return {
        "version": 1,
        "categories": [
            {"code": "social_insurance", "name_zh": "社会保险", "name_en": "Social insurance", "icon": "shield"},
            {"code": "household", "name_zh": "户籍", "name_en": "Household", "icon": "book"},
        ],
        "items": [_item("SB-001"), _item("HJ-001", "household")],
    }


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_minimal_catalogue_loads(tmp_path: Path) -> None:
    catalog = load_catalog_file(_write(tmp_path, _minimal_catalog()))
    assert [item.code for item in catalog.items] == ["SB-001", "HJ-001"]
    assert catalog.item("HJ-001").category == "household"
    assert catalog.items[0].materials[1].to_dict() == _material("photo", False)


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


BAD_CATALOGUES = [
    ("duplicate code", _set(["items", 1, "code"], "SB-001"), "SB-001", "code", "duplicate item code"),
    ("unknown category", _set(["items", 1, "category"], "tax"), "HJ-001", "category", "unknown category 'tax'"),
    (
        "no mandatory material",
        _set(["items", 0, "materials", 0, "mandatory"], False),
        "SB-001",
        "materials",
        "at least one mandatory",
    ),
    ("no materials", _set(["items", 0, "materials"], []), "SB-001", "materials", "at least one material"),
    (
        "duplicate material code",
        _set(["items", 1, "materials", 1, "code"], "id_card"),
        "HJ-001",
        "materials",
        "duplicate material code 'id_card'",
    ),
    ("negative time limit", _set(["items", 0, "time_limit_days"], -1), "SB-001", "time_limit_days", "0 to 365"),
    ("time limit too long", _set(["items", 0, "time_limit_days"], 366), "SB-001", "time_limit_days", "0 to 365"),
    ("time limit as text", _set(["items", 0, "time_limit_days"], "10"), "SB-001", "time_limit_days", "integer"),
    ("time limit as bool", _set(["items", 0, "time_limit_days"], True), "SB-001", "time_limit_days", "integer"),
    ("empty skill", _set(["items", 1, "skill"], " "), "HJ-001", "skill", "non-empty"),
    ("empty Chinese name", _set(["items", 1, "name_zh"], ""), "HJ-001", "name_zh", "non-empty"),
    ("empty English name", _set(["items", 0, "name_en"], ""), "SB-001", "name_en", "non-empty"),
    ("name too long for the column", _set(["items", 0, "name_zh"], "办" * 101), "SB-001", "name_zh", "longer than 100"),
    ("non-ASCII code", _set(["items", 0, "code"], "社保-1"), "社保-1", "code", "must match"),
    ("missing field", _delete(["items", 1, "skill"]), "HJ-001", "skill", "missing field"),
    ("misspelt field", _set(["items", 0, "materials", 0, "mandtory"], True), "SB-001", "mandtory", "unknown field"),
    (
        "material with empty name",
        _set(["items", 0, "materials", 1, "name_en"], ""),
        "SB-001",
        "name_en",
        "non-empty",
    ),
    ("cross_region as text", _set(["items", 1, "cross_region"], "yes"), "HJ-001", "cross_region", "true or false"),
]


@pytest.mark.parametrize(
    ("mutate", "code", "field", "problem"),
    [case[1:] for case in BAD_CATALOGUES],
    ids=[case[0] for case in BAD_CATALOGUES],
)
def test_bad_catalogue_names_item_and_field(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], code: str, field: str, problem: str
) -> None:
    doc = copy.deepcopy(_minimal_catalog())
    mutate(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(ValueError) as excinfo:
        load_catalog_file(path)
    message = str(excinfo.value)
    assert f"item {code!r}" in message
    assert field in message
    assert problem in message
    assert str(path) in message


def test_malformed_json_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text('{"version": 1,\n "items": [,]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"catalog\.json: not valid JSON: .* at line 2 column"):
        load_catalog_file(path)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_bytes('{"version": 1, "name": "社保"}'.encode("gb18030"))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        load_catalog_file(path)


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ([], "must be a JSON object"),
        ({"version": 2, "categories": [], "items": []}, "field 'version' must be 1"),
        ({"version": 1, "categories": [], "items": {}}, "field 'items' must be a list"),
        ({"version": 1, "items": []}, "field 'categories' must be a list"),
    ],
    ids=["not an object", "wrong version", "items not a list", "no categories"],
)
def test_bad_document_shape(tmp_path: Path, doc: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        load_catalog_file(_write(tmp_path, doc))


def test_duplicate_category_is_refused(tmp_path: Path) -> None:
    doc = _minimal_catalog()
    doc["categories"].append(dict(doc["categories"][0]))
    with pytest.raises(ValueError, match=r"category 'social_insurance': field 'code': duplicate"):
        load_catalog_file(_write(tmp_path, doc))


# --------------------------------------------------------------------------- region validation


def _regions_doc() -> dict[str, Any]:
    return json.loads(default_regions_path().read_text(encoding="utf-8"))


BAD_REGIONS = [
    ("bad time", ["regions", 0, "service_hours", "weekdays", 0, "start"], "9:00", "weekdays[0].start", "HH:MM"),
    ("start after end", ["regions", 0, "service_hours", "weekdays", 0, "end"], "08:00", "weekdays[0]", "not before"),
    ("overlap", ["regions", 0, "service_hours", "weekdays", 1, "start"], "11:00", "weekdays[1]", "overlaps"),
    ("bad date", ["regions", 1, "service_hours", "holidays", 0], "2026-02-30", "holidays[0]", "YYYY-MM-DD"),
    ("weekday as working weekend", ["regions", 1, "service_hours", "working_weekends", 0], "2026-01-05",
     "working_weekends", "not a Saturday or Sunday"),
    ("unknown timezone", ["regions", 2, "service_hours", "timezone"], "Asia/Beijing", "timezone", "unknown time zone"),
    ("lunch as text", ["regions", 2, "service_hours", "lunch_service"], "no", "lunch_service", "true or false"),
    ("upper-case code", ["regions", 2, "code"], "Qingshui", "code", "must match"),
    ("duplicate code", ["regions", 2, "code"], "dongcheng", "code", "duplicate region code"),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "problem"),
    [case[1:] for case in BAD_REGIONS],
    ids=[case[0] for case in BAD_REGIONS],
)
def test_bad_regions_name_region_and_field(
    tmp_path: Path, path: list[Any], value: Any, field: str, problem: str
) -> None:
    doc = _regions_doc()
    _set(path, value)(doc)
    file = tmp_path / "regions.json"
    file.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError) as excinfo:
        load_regions_file(file)
    message = str(excinfo.value)
    assert "region '" in message
    assert field in message
    assert problem in message
