"""Materials: document captures, signatures, ID-card photos and stills uploaded during a call.

The bytes are checked to really be what the declared content type says
(Pillow parses images, PDFs must start with a PDF header) before they are
stored, because they end up in front of supervisors and in archives.  Some
kinds are narrower than the general rule (`KIND_RULES`): a signature is a PNG
of a signing pad, an ID-card photo the small picture a card reader decodes.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlmodel import Session, col, select

from records.errors import NotFoundError, ValidationError
from records.events import append_event, lock_log
from records.models import CallSession, Event, Material, ServiceItem, as_utc
from records.privacy import mask_id_number, validate_id_name, validate_id_number
from records.storage import FileStore

logger = logging.getLogger(__name__)

MAX_MATERIAL_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 80_000_000  # a 100 MP document camera would be exceptional; refuse bombs early
MATERIAL_KINDS = frozenset({"capture", "signature", "id_photo", "still"})

# content type -> (Pillow format or None for PDF, file suffix)
CONTENT_TYPES: dict[str, tuple[str | None, str]] = {
    "image/jpeg": ("JPEG", ".jpg"),
    "image/png": ("PNG", ".png"),
    "image/webp": ("WEBP", ".webp"),
    "application/pdf": (None, ".pdf"),
}


@dataclass(frozen=True)
class KindRule:
    """What a material kind may be: content types, bytes and pixels (each side)."""

    content_types: frozenset[str]
    max_bytes: int
    max_side: int | None = None


# A signing pad at 2x device pixels is ~2000x800; a reader's photo is 102x126 (scaled up at most 8x).
KIND_RULES: dict[str, KindRule] = {
    "signature": KindRule(frozenset({"image/png"}), 2 * 1024 * 1024, 4096),
    "id_photo": KindRule(frozenset({"image/jpeg", "image/png"}), 1024 * 1024, 1024),
}


@dataclass(frozen=True)
class ContentCheck:
    """What inspecting the bytes found: the file suffix and, for images, the pixel size."""

    suffix: str
    width: int | None
    height: int | None


def inspect_content(data: bytes, content_type: str, *, max_bytes: int = MAX_MATERIAL_BYTES) -> ContentCheck:
    """Check that `data` is a non-empty, not-too-large file of `content_type`."""
    if content_type not in CONTENT_TYPES:
        raise ValidationError("content_type_not_allowed", f"content type {content_type!r} not accepted")
    if not data:
        raise ValidationError("empty_file", "empty upload")
    if len(data) > max_bytes:
        raise ValidationError("file_too_large", f"{len(data)} bytes > {max_bytes}")
    image_format, suffix = CONTENT_TYPES[content_type]
    if image_format is None:
        if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
            raise ValidationError("content_mismatch", "not a complete PDF document")
        return ContentCheck(suffix, None, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[image_format]) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise ValidationError("image_too_large", f"{width}x{height} pixels")
                img.verify()
    except ValidationError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            OSError, SyntaxError, ValueError) as exc:
        raise ValidationError("content_mismatch", f"not a valid {content_type}: {exc}") from exc
    return ContentCheck(suffix, width, height)


def check_kind(kind: str, content_type: str, data: bytes) -> ContentCheck:
    """`inspect_content` under the narrower rule of `kind`, if it has one."""
    if kind not in MATERIAL_KINDS:
        raise ValidationError("invalid_material_kind", f"unknown material kind {kind!r}")
    rule = KIND_RULES.get(kind)
    if rule is None:
        return inspect_content(data, content_type)
    if content_type not in rule.content_types:
        raise ValidationError("content_type_not_allowed",
                              f"a {kind} must be {' or '.join(sorted(rule.content_types))}, not {content_type!r}")
    check = inspect_content(data, content_type, max_bytes=rule.max_bytes)
    if rule.max_side is not None and max(check.width or 0, check.height or 0) > rule.max_side:
        raise ValidationError("image_too_large", f"a {kind} is at most {rule.max_side} pixels a side")
    return check


def _checklist_codes(session: Session, call: CallSession) -> set[str]:
    item = session.get(ServiceItem, call.item_code)
    return {str(m.get("code")) for m in (item.materials if item else [])}


def add_material(
    session: Session,
    store: FileStore,
    *,
    session_id: str,
    kind: str,
    data: bytes,
    content_type: str,
    checklist_code: str | None = None,
    actor: str,
) -> Material:
    """Validate, store and record one material; event `material.added` with its SHA-256.

    The file is written before the row; if the caller's transaction rolls
    back, an unreferenced file is left for a sweep, never a row without file.
    Raises ValidationError (`content_type_not_allowed`, `file_too_large`,
    `content_mismatch`, ...) before anything is stored.
    """
    check = check_kind(kind, content_type, data)
    # No lock_log here: adding a row depends on no state that could change
    # (calls are never deleted), and the file's fsync should not hold the log.
    call = session.get(CallSession, session_id)
    if call is None:
        raise NotFoundError("call_not_found", f"no call session {session_id!r}")
    if checklist_code is not None and checklist_code not in _checklist_codes(session, call):
        raise ValidationError("unknown_checklist_code", f"{checklist_code!r} not on the item's checklist")
    stored = store.put_bytes("materials", data, check.suffix)
    material = Material(
        session_id=session_id,
        kind=kind,
        checklist_code=checklist_code,
        path=stored.path,
        content_type=content_type,
        sha256=stored.sha256,
        size=stored.size,
        width=check.width,
        height=check.height,
    )
    session.add(material)
    session.flush()
    append_event(session, kind="material.added", actor=actor, session_id=session_id,
                 booth_id=call.booth_id,
                 data={"material_id": material.id, "kind": kind, "path": stored.path,
                       "content_type": content_type, "sha256": stored.sha256, "size": stored.size,
                       "checklist_code": checklist_code})
    return material


@dataclass(frozen=True)
class IdCardRead:
    """A card read that was stored: its photo material and the two forms of its number."""

    material: Material
    name: str
    number: str  # the full number: for the live-call vault only, never stored or logged
    masked: str


def record_id_card_read(
    session: Session,
    store: FileStore,
    *,
    session_id: str,
    name: str,
    number: str,
    photo: bytes,
    content_type: str,
    actor: str,
) -> IdCardRead:
    """Validate a card read, store its photo (kind `id_photo`), log `idcard.read` with the masked number.

    Nothing is stored when the name, the number (GB 11643 check digit) or the photo is refused.
    """
    clean_name = validate_id_name(name)
    clean_number = validate_id_number(number)
    masked = mask_id_number(clean_number)
    material = add_material(session, store, session_id=session_id, kind="id_photo", data=photo,
                            content_type=content_type, actor=actor)
    append_event(session, kind="idcard.read", actor=actor, session_id=session_id, booth_id=_booth_of(session, session_id),
                 data={"material_id": material.id, "name": clean_name, "id_number_masked": masked})
    return IdCardRead(material, clean_name, clean_number, masked)


def latest_id_card(session: Session, session_id: str) -> dict[str, Any] | None:
    """The call's last card read as logged (name, masked number, photo material), or None.

    A card whose photo was purged is not shown any more.
    """
    stmt = (select(Event).where(Event.session_id == session_id, Event.kind == "idcard.read")
            .order_by(col(Event.seq).desc()).limit(1))
    event = session.exec(stmt).first()
    if event is None:
        return None
    material_id = event.data.get("material_id")
    material = session.get(Material, material_id) if isinstance(material_id, int) else None
    if material is None or material.purged_at is not None:
        return None
    return {"name": event.data.get("name", ""), "id_number_masked": event.data.get("id_number_masked", ""),
            "material_id": material.id, "read_at": as_utc(event.ts).isoformat()}


def _booth_of(session: Session, session_id: str) -> int | None:
    call = session.get(CallSession, session_id)
    return call.booth_id if call else None


def list_materials(session: Session, session_id: str, *, include_purged: bool = False) -> list[Material]:
    """A session's materials in upload order."""
    stmt = select(Material).where(Material.session_id == session_id)
    if not include_purged:
        stmt = stmt.where(col(Material.purged_at).is_(None))
    return list(session.exec(stmt.order_by(col(Material.id))))


def tick_checklist(session: Session, material_id: int, checklist_code: str | None, *, actor: str) -> Material:
    """The clerk assigns a material to a checklist entry (None un-ticks); event `material.ticked`."""
    lock_log(session)
    material = session.get(Material, material_id, populate_existing=True)
    if material is None or material.purged_at is not None:
        raise NotFoundError("material_not_found", f"no material {material_id}")
    call = session.get(CallSession, material.session_id)
    assert call is not None  # foreign key
    if checklist_code is not None and checklist_code not in _checklist_codes(session, call):
        raise ValidationError("unknown_checklist_code", f"{checklist_code!r} not on the item's checklist")
    previous = material.checklist_code
    material.checklist_code = checklist_code
    session.add(material)
    append_event(session, kind="material.ticked", actor=actor, session_id=material.session_id,
                 booth_id=call.booth_id,
                 data={"material_id": material.id, "checklist_code": checklist_code, "previous": previous})
    return material


def missing_mandatory(session: Session, session_id: str) -> list[str]:
    """Codes of the item's mandatory materials no material is ticked against (for 补正)."""
    call = session.get(CallSession, session_id)
    if call is None:
        raise NotFoundError("call_not_found", f"no call session {session_id!r}")
    item = session.get(ServiceItem, call.item_code)
    ticked = {m.checklist_code for m in list_materials(session, session_id)}
    return [str(m["code"]) for m in (item.materials if item else [])
            if m.get("mandatory") and m.get("code") not in ticked]
