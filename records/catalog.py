"""The service-item catalogue (事项目录) and the regions, from JSON files into the records.

The catalogue is edited by people (a service centre adds an item, corrects a
material), so loading it validates everything up front and names the item and
field at fault: a typo must stop the load, not surface as a clerk's empty
checklist in the middle of a call.  Loading into the database is an upsert:
running it again changes nothing, and items dropped from a newer file are
deactivated rather than deleted, because cases and calls keep referring to them.

Writes are flushed, not committed: the caller commits, so the catalogue and the
regions can go in with one transaction.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, select

from records.models import Region, ServiceItem

logger = logging.getLogger(__name__)

CATALOG_VERSION = 1
REGIONS_VERSION = 1
MAX_TIME_LIMIT_DAYS = 365

# Column widths of records.models, checked here because SQLite would store an
# over-long value silently while PostgreSQL refuses it.
_ITEM_CODE_MAX = 32
_ITEM_NAME_ZH_MAX = 100
_ITEM_NAME_EN_MAX = 150
_CATEGORY_MAX = 32
_SKILL_MAX = 32
_MATERIAL_CODE_MAX = 32  # Material.checklist_code refers to it
_REGION_CODE_MAX = 32
_REGION_NAME_MAX = 64

_ITEM_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_SLUG_RE = re.compile(r"[a-z][a-z0-9_-]*")
_HHMM_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
# Pinyin initials of name_zh (社会保障卡补领换领 -> "shbzkblhl") for the kiosk's search box.
_INITIALS_RE = re.compile(r"[a-z]{1,64}")

PathLike = str | os.PathLike[str] | Traversable


# --------------------------------------------------------------------------- helpers


def _where(kind: str, code: object) -> str:
    return f"{kind} {code!r}"


def _require_text(where: str, field: str, value: object, max_length: int | None = None) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: field {field!r} must be a non-empty string, got {value!r}")
    if max_length is not None and len(value) > max_length:
        raise ValueError(f"{where}: field {field!r} is longer than {max_length} characters")


def _require_code(where: str, field: str, value: object, pattern: re.Pattern[str], max_length: int) -> None:
    _require_text(where, field, value, max_length)
    assert isinstance(value, str)
    if not pattern.fullmatch(value):
        raise ValueError(f"{where}: field {field!r} must match {pattern.pattern}, got {value!r}")


def _require_bool(where: str, field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: field {field!r} must be true or false, got {value!r}")


def _check_keys(where: str, raw: Mapping[str, Any], required: Iterable[str], optional: Iterable[str] = ()) -> None:
    """Reject missing and unknown keys: a misspelt "mandtory" must not silently mean "optional"."""
    required = tuple(required)
    missing = [key for key in required if key not in raw]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(repr(k) for k in missing)}")
    unknown = sorted(set(raw) - set(required) - set(optional))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(repr(k) for k in unknown)}")


def _require_mapping(where: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a JSON object, got {type(value).__name__}")
    return value


def _require_list(where: str, field: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: field {field!r} must be a list, got {type(value).__name__}")
    return value


def _read_json(path: PathLike) -> Any:
    """Parse a UTF-8 JSON file, turning decoding errors into a ValueError that names the file."""
    source: Path | Traversable = Path(path) if isinstance(path, (str, os.PathLike)) else path
    try:
        text = source.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source}: not valid UTF-8 at byte {exc.start}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc


def _check_document(source: str, raw: object, list_key: str, version: int) -> Mapping[str, Any]:
    doc = _require_mapping(source, raw)
    if doc.get("version") != version:
        raise ValueError(f"{source}: field 'version' must be {version}, got {doc.get('version')!r}")
    _require_list(source, list_key, doc.get(list_key))
    return doc


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Category:
    """A group of items on the kiosk's first screen (社保, 医保, 户籍 ...)."""

    code: str
    name_zh: str
    name_en: str
    icon: str

    def __post_init__(self) -> None:
        where = _where("category", self.code)
        _require_code(where, "code", self.code, _SLUG_RE, _CATEGORY_MAX)
        _require_text(where, "name_zh", self.name_zh)
        _require_text(where, "name_en", self.name_en)
        _require_text(where, "icon", self.icon)

    @classmethod
    def from_dict(cls, raw: object, index: int) -> Category:
        """Build from the JSON object at `categories[index]`."""
        where = f"categories[{index}]"
        data = _require_mapping(where, raw)
        _check_keys(_where("category", data.get("code", where)), data, ("code", "name_zh", "name_en", "icon"))
        return cls(code=data["code"], name_zh=data["name_zh"], name_en=data["name_en"], icon=data["icon"])


@dataclass(frozen=True)
class MaterialSpec:
    """One line of an item's checklist (一次性告知); `code` is what a captured Material ticks."""

    code: str
    name_zh: str
    name_en: str
    mandatory: bool
    note_zh: str | None = None
    note_en: str | None = None

    def __post_init__(self) -> None:
        where = _where("material", self.code)
        _require_code(where, "code", self.code, _SLUG_RE, _MATERIAL_CODE_MAX)
        _require_text(where, "name_zh", self.name_zh)
        _require_text(where, "name_en", self.name_en)
        _require_bool(where, "mandatory", self.mandatory)
        for field in ("note_zh", "note_en"):
            value = getattr(self, field)
            if value is not None:
                _require_text(where, field, value)

    @classmethod
    def from_dict(cls, raw: object, where: str) -> MaterialSpec:
        """Build from one JSON object of an item's `materials`; `where` locates it in errors."""
        data = _require_mapping(where, raw)
        _check_keys(where, data, ("code", "name_zh", "name_en", "mandatory"), ("note_zh", "note_en"))
        try:
            return cls(
                code=data["code"],
                name_zh=data["name_zh"],
                name_en=data["name_en"],
                mandatory=data["mandatory"],
                note_zh=data.get("note_zh"),
                note_en=data.get("note_en"),
            )
        except ValueError as exc:
            # The material alone does not know its item; the error must name both.
            raise ValueError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape stored in ServiceItem.materials; absent notes are left out, not null."""
        out: dict[str, Any] = {
            "code": self.code,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "mandatory": self.mandatory,
        }
        if self.note_zh is not None:
            out["note_zh"] = self.note_zh
        if self.note_en is not None:
            out["note_en"] = self.note_en
        return out


@dataclass(frozen=True)
class CatalogItem:
    """A service item as the catalogue file states it; upserted into a ServiceItem row."""

    code: str
    name_zh: str
    name_en: str
    category: str
    skill: str
    materials: tuple[MaterialSpec, ...]
    time_limit_days: int
    cross_region: bool = True
    initials: str | None = None

    def __post_init__(self) -> None:
        where = _where("item", self.code)
        _require_code(where, "code", self.code, _ITEM_CODE_RE, _ITEM_CODE_MAX)
        _require_text(where, "name_zh", self.name_zh, _ITEM_NAME_ZH_MAX)
        _require_text(where, "name_en", self.name_en, _ITEM_NAME_EN_MAX)
        _require_text(where, "category", self.category, _CATEGORY_MAX)
        _require_text(where, "skill", self.skill, _SKILL_MAX)
        # bool is an int in Python; "true" as a time limit is a mistake, not one day.
        if (
            not isinstance(self.time_limit_days, int)
            or isinstance(self.time_limit_days, bool)
            or not 0 <= self.time_limit_days <= MAX_TIME_LIMIT_DAYS
        ):
            raise ValueError(
                f"{where}: field 'time_limit_days' must be an integer from 0 to {MAX_TIME_LIMIT_DAYS}"
                f" (working days, 0 = 即办), got {self.time_limit_days!r}"
            )
        _require_bool(where, "cross_region", self.cross_region)
        if self.initials is not None:
            _require_code(where, "initials", self.initials, _INITIALS_RE, 64)
        if not self.materials:
            raise ValueError(f"{where}: field 'materials' must list at least one material")
        seen: set[str] = set()
        for material in self.materials:
            if material.code in seen:
                raise ValueError(f"{where}: field 'materials': duplicate material code {material.code!r}")
            seen.add(material.code)
        if not any(material.mandatory for material in self.materials):
            # An item with nothing mandatory could be accepted with no documents at all.
            raise ValueError(f"{where}: field 'materials' must have at least one mandatory material")

    @classmethod
    def from_dict(cls, raw: object, index: int) -> CatalogItem:
        """Build from the JSON object at `items[index]`; errors name the item's code."""
        data = _require_mapping(f"items[{index}]", raw)
        where = _where("item", data.get("code", f"items[{index}]"))
        _check_keys(
            where,
            data,
            ("code", "name_zh", "name_en", "category", "skill", "materials", "time_limit_days"),
            ("cross_region", "initials"),
        )
        raw_materials = _require_list(where, "materials", data["materials"])
        materials = tuple(
            MaterialSpec.from_dict(m, f"{where}: field 'materials[{i}]'") for i, m in enumerate(raw_materials)
        )
        return cls(
            code=data["code"],
            name_zh=data["name_zh"],
            name_en=data["name_en"],
            category=data["category"],
            skill=data["skill"],
            materials=materials,
            time_limit_days=data["time_limit_days"],
            cross_region=data.get("cross_region", True),
            initials=data.get("initials"),
        )

    def row_values(self) -> dict[str, Any]:
        """The ServiceItem column values this item stands for (an active row)."""
        return {
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "category": self.category,
            "skill": self.skill,
            "materials": [m.to_dict() for m in self.materials],
            "time_limit_days": self.time_limit_days,
            "cross_region": self.cross_region,
            "active": True,
        }


@dataclass(frozen=True)
class Catalog:
    """A whole catalogue file: its categories and items, checked against each other."""

    categories: tuple[Category, ...]
    items: tuple[CatalogItem, ...]
    version: int = CATALOG_VERSION

    def __post_init__(self) -> None:
        category_codes: set[str] = set()
        for category in self.categories:
            if category.code in category_codes:
                raise ValueError(f"category {category.code!r}: field 'code': duplicate category code")
            category_codes.add(category.code)
        item_codes: set[str] = set()
        for item in self.items:
            if item.code in item_codes:
                raise ValueError(f"item {item.code!r}: field 'code': duplicate item code")
            item_codes.add(item.code)
            if item.category not in category_codes:
                raise ValueError(
                    f"item {item.code!r}: field 'category': unknown category {item.category!r}"
                    f" (known: {', '.join(sorted(category_codes))})"
                )

    @classmethod
    def from_dict(cls, raw: object, source: str = "catalogue file") -> Catalog:
        """Build from a parsed catalogue document `{"version", "categories", "items"}`."""
        doc = _check_document(source, raw, "items", CATALOG_VERSION)
        raw_categories = _require_list(source, "categories", doc.get("categories"))
        _check_keys(source, doc, ("version", "categories", "items"))
        return cls(
            categories=tuple(Category.from_dict(c, i) for i, c in enumerate(raw_categories)),
            items=tuple(CatalogItem.from_dict(it, i) for i, it in enumerate(doc["items"])),
            version=doc["version"],
        )

    def item(self, code: str) -> CatalogItem:
        """The item with `code`; KeyError when the catalogue has none."""
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(code)


def default_catalog_path() -> Traversable:
    """The catalogue shipped inside the `records` package (never the working directory)."""
    return resources.files("records") / "data" / "catalog.json"


def default_regions_path() -> Traversable:
    """The sample regions shipped inside the `records` package."""
    return resources.files("records") / "data" / "regions.json"


def load_catalog_file(path: PathLike) -> Catalog:
    """Parse and validate a catalogue file; a ValueError names the file, the item and the field."""
    raw = _read_json(path)
    try:
        return Catalog.from_dict(raw)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def categories(catalog: Catalog) -> list[Category]:
    """The categories that have at least one item, in file order.

    The kiosk shows one tile per category; an empty tile would lead a resident
    into a dead end.
    """
    used = {item.category for item in catalog.items}
    return [category for category in catalog.categories if category.code in used]


def upsert_catalog(session: Session, catalog: Catalog) -> tuple[int, int]:
    """Make the ServiceItem rows match `catalog`; returns (created, updated).

    A row that already matches is left alone, so a second load reports (0, 0)
    and writes nothing.  Rows whose code is missing from the catalogue are
    deactivated (counted as updated), never deleted: calls, cases and
    appointments keep pointing at them.  A deactivated item that reappears is
    reactivated.  Flushes; the caller commits.
    """
    existing = {row.code: row for row in session.exec(select(ServiceItem))}
    created = updated = 0
    for item in catalog.items:
        values = item.row_values()
        row = existing.pop(item.code, None)
        if row is None:
            session.add(ServiceItem(code=item.code, **values))
            created += 1
            continue
        if _apply_changes(row, values):
            session.add(row)
            updated += 1
    deactivated = 0
    for row in existing.values():
        if row.active:
            row.active = False
            session.add(row)
            deactivated += 1
    updated += deactivated
    session.flush()
    logger.info(
        "catalogue upserted: %d created, %d updated (of which %d deactivated), %d items in file",
        created,
        updated,
        deactivated,
        len(catalog.items),
    )
    return created, updated


def _apply_changes(row: Any, values: Mapping[str, Any]) -> bool:
    """Set the attributes that differ; True when any did.

    Only differing attributes are assigned so that SQLAlchemy sees no change
    (and issues no UPDATE) for a row that already matches.
    """
    changed = False
    for field, value in values.items():
        if getattr(row, field) != value:
            setattr(row, field, value)
            changed = True
    return changed


def list_items(session: Session, *, category: str | None = None, active_only: bool = True) -> list[ServiceItem]:
    """Service items ordered by code, optionally of one category; inactive ones only on request."""
    statement = select(ServiceItem)
    if category is not None:
        statement = statement.where(col(ServiceItem.category) == category)
    if active_only:
        statement = statement.where(col(ServiceItem.active).is_(True))
    return list(session.exec(statement.order_by(col(ServiceItem.code))))


def get_item(session: Session, code: str) -> ServiceItem | None:
    """The item with `code`, active or not (an old case still needs its item), or None."""
    return session.get(ServiceItem, code)


# --------------------------------------------------------------------------- regions


def _check_intervals(where: str, field: str, raw: object) -> list[dict[str, str]]:
    intervals = _require_list(where, field, raw)
    out: list[dict[str, str]] = []
    previous_end = ""
    for i, interval in enumerate(intervals):
        spot = f"{field}[{i}]"
        data = _require_mapping(f"{where}: field {spot!r}", interval)
        _check_keys(f"{where}: field {spot!r}", data, ("start", "end"))
        start, end = data["start"], data["end"]
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, str) or not _HHMM_RE.fullmatch(value):
                raise ValueError(f"{where}: field '{spot}.{name}' must be HH:MM, got {value!r}")
        # Zero-padded HH:MM strings compare in time order.
        if start >= end:
            raise ValueError(f"{where}: field {spot!r}: start {start} is not before end {end}")
        if start < previous_end:
            raise ValueError(f"{where}: field {spot!r}: overlaps or precedes the interval before it")
        previous_end = end
        out.append({"start": start, "end": end})
    return out


def _check_dates(where: str, field: str, raw: object) -> list[str]:
    out: list[str] = []
    for i, value in enumerate(_require_list(where, field, raw)):
        try:
            if not isinstance(value, str):
                raise ValueError
            out.append(date.fromisoformat(value).isoformat())
        except ValueError:
            raise ValueError(f"{where}: field '{field}[{i}]' must be a YYYY-MM-DD date, got {value!r}") from None
    return out


def validate_service_hours(where: str, raw: object) -> dict[str, Any]:
    """Check a region's service hours and return a normalised plain dict.

    The shape: timezone, weekday and Saturday intervals (Sunday optional),
    whether the lunch break is served, and the holiday and working-weekend
    (调休上班) dates.  Checked here so a bad file fails at load, not when the
    kiosk asks whether it may place a call.
    """
    data = _require_mapping(f"{where}: field 'service_hours'", raw)
    _check_keys(
        f"{where}: field 'service_hours'",
        data,
        ("timezone", "weekdays", "saturday", "lunch_service", "holidays", "working_weekends"),
        ("sunday",),
    )
    tz = data["timezone"]
    _require_text(where, "service_hours.timezone", tz)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{where}: field 'service_hours.timezone': unknown time zone {tz!r}") from None
    _require_bool(where, "service_hours.lunch_service", data["lunch_service"])
    hours: dict[str, Any] = {"timezone": tz}
    hours["weekdays"] = _check_intervals(where, "service_hours.weekdays", data["weekdays"])
    if not hours["weekdays"]:
        raise ValueError(f"{where}: field 'service_hours.weekdays' must have at least one interval")
    hours["saturday"] = _check_intervals(where, "service_hours.saturday", data["saturday"])
    if "sunday" in data:
        hours["sunday"] = _check_intervals(where, "service_hours.sunday", data["sunday"])
    hours["lunch_service"] = data["lunch_service"]
    hours["holidays"] = _check_dates(where, "service_hours.holidays", data["holidays"])
    hours["working_weekends"] = _check_dates(where, "service_hours.working_weekends", data["working_weekends"])
    both = sorted(set(hours["holidays"]) & set(hours["working_weekends"]))
    if both:
        raise ValueError(f"{where}: field 'service_hours': dates both holiday and working weekend: {', '.join(both)}")
    for value in hours["working_weekends"]:
        if date.fromisoformat(value).weekday() < 5:
            raise ValueError(f"{where}: field 'service_hours.working_weekends': {value} is not a Saturday or Sunday")
    return hours


@dataclass(frozen=True)
class RegionSpec:
    """A town or street (镇街) as the regions file states it; upserted into a Region row."""

    code: str
    name_zh: str
    name_en: str
    service_hours: Mapping[str, Any]

    def __post_init__(self) -> None:
        where = _where("region", self.code)
        _require_code(where, "code", self.code, _SLUG_RE, _REGION_CODE_MAX)
        _require_text(where, "name_zh", self.name_zh, _REGION_NAME_MAX)
        _require_text(where, "name_en", self.name_en, _REGION_NAME_MAX)
        # Frozen dataclass: store the normalised copy through object.__setattr__.
        object.__setattr__(self, "service_hours", validate_service_hours(where, self.service_hours))

    @classmethod
    def from_dict(cls, raw: object, index: int) -> RegionSpec:
        """Build from the JSON object at `regions[index]`."""
        data = _require_mapping(f"regions[{index}]", raw)
        where = _where("region", data.get("code", f"regions[{index}]"))
        _check_keys(where, data, ("code", "name_zh", "name_en", "service_hours"))
        return cls(
            code=data["code"], name_zh=data["name_zh"], name_en=data["name_en"], service_hours=data["service_hours"]
        )

    def row_values(self) -> dict[str, Any]:
        """The Region column values this region stands for."""
        return {"name_zh": self.name_zh, "name_en": self.name_en, "service_hours": dict(self.service_hours)}


def load_regions_file(path: PathLike) -> list[RegionSpec]:
    """Parse and validate a regions file `{"version": 1, "regions": [...]}`; codes must be unique."""
    raw = _read_json(path)
    try:
        doc = _check_document("regions file", raw, "regions", REGIONS_VERSION)
        _check_keys("regions file", doc, ("version", "regions"))
        regions = [RegionSpec.from_dict(r, i) for i, r in enumerate(doc["regions"])]
        seen: set[str] = set()
        for region in regions:
            if region.code in seen:
                raise ValueError(f"region {region.code!r}: field 'code': duplicate region code")
            seen.add(region.code)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return regions


def upsert_regions(session: Session, regions: Sequence[RegionSpec]) -> tuple[int, int]:
    """Make the Region rows for `regions` match; returns (created, updated).

    Regions absent from the list are left as they are: booths, cases and
    clerks' permissions refer to them, and Region has no active flag.
    Flushes; the caller commits.
    """
    created = updated = 0
    for region in regions:
        values = region.row_values()
        row = session.get(Region, region.code)
        if row is None:
            session.add(Region(code=region.code, **values))
            created += 1
        elif _apply_changes(row, values):
            session.add(row)
            updated += 1
    session.flush()
    logger.info("regions upserted: %d created, %d updated, %d in file", created, updated, len(regions))
    return created, updated
