"""Prerequisite rows for records tests, built directly as SQLModel rows.

Tests of the records functions need regions, booths, users and service items
but must not depend on the accounts or catalog modules (written separately).
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from records import calls
from records.models import Booth, Region, Role, ServiceItem, User

ITEM_MATERIALS: list[dict[str, Any]] = [
    {"code": "id_card", "name_zh": "身份证", "name_en": "ID card", "mandatory": True},
    {"code": "hukou", "name_zh": "户口簿", "name_en": "Household register", "mandatory": True},
    {"code": "photo", "name_zh": "照片", "name_en": "Photo", "mandatory": False},
]


def add_region(session: Session, code: str = "xh") -> Region:
    region = Region(code=code, name_zh=f"{code}街道", name_en=f"{code} street")
    session.add(region)
    session.flush()
    return region


def add_booth(session: Session, region_code: str = "xh", name: str | None = None) -> Booth:
    booth = Booth(name=name or f"booth-{secrets.token_hex(4)}", region_code=region_code,
                  token_hash=secrets.token_hex(32))
    session.add(booth)
    session.flush()
    return booth


def add_user(session: Session, role: Role = Role.CLERK, username: str | None = None) -> User:
    user = User(username=username or f"u-{secrets.token_hex(4)}", role=role, password_hash="x",
                skills=["social"], regions=["xh"])
    session.add(user)
    session.flush()
    return user


def add_item(session: Session, code: str = "sb01") -> ServiceItem:
    item = ServiceItem(code=code, name_zh="社保参保登记", name_en="Social insurance registration",
                       category="social", skill="social", materials=list(ITEM_MATERIALS),
                       time_limit_days=5)
    session.add(item)
    session.flush()
    return item


def seed(engine: Engine, regions: tuple[str, ...] = ("xh",)) -> dict[str, Any]:
    """One region (or several), a booth in the first, a clerk, a supervisor and an item; committed."""
    with Session(engine, expire_on_commit=False) as session:
        for code in regions:
            add_region(session, code)
        booth = add_booth(session, regions[0])
        clerk = add_user(session, Role.CLERK)
        supervisor = add_user(session, Role.SUPERVISOR)
        item = add_item(session)
        session.commit()
        return {"booth_id": booth.id, "clerk_id": clerk.id, "supervisor_id": supervisor.id,
                "item_code": item.code, "region_code": regions[0]}


def seed_answered_call(engine: Engine) -> dict[str, Any]:
    """`seed`, then a call at its booth for its item, answered by its clerk; the ids gain "call_id"."""
    ids = seed(engine)
    with Session(engine) as session:
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        calls.mark_answered(session, call.id, clerk_id=ids["clerk_id"])
        session.commit()
        ids["call_id"] = call.id
    return ids


def _png(colour: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


def fill_every_table(engine: Engine, store: Any) -> dict[str, Any]:
    """A row (or more) in every table, through the records functions where they exist; committed.

    For migration and backup tests: a served call with materials, a recording,
    a case, a rating, an alert acknowledged, a print job, a browser session,
    an appointment and an alert rule, all on the event log.  Inserts through
    today's models, so a revision that adds a column must give it a default
    (or this must insert the older layout itself).
    """
    import json
    from datetime import date, datetime, timedelta, timezone

    from records import alerts, cases, materials, printjobs, ratings, recordings
    from records.accounts import start_web_session
    from records.events import append_event
    from records.models import AlertKind, Appointment, CaseStatus

    ids = seed_answered_call(engine)
    with Session(engine, expire_on_commit=False) as session:
        call_id = ids["call_id"]
        mats = [materials.add_material(session, store, session_id=call_id, kind="capture", data=_png(c),
                                       content_type="image/png", checklist_code="id_card", actor="booth:1")
                for c in [(255, 0, 0), (0, 0, 255)]]
        # A recording folder as the media hub leaves it: a track file and manifest.json listing it.
        track_path, manifest_path = f"recordings/{call_id}/booth-face.webm", f"recordings/{call_id}/manifest.json"
        store.absolute(track_path).parent.mkdir(parents=True, exist_ok=True)
        store.absolute(track_path).write_bytes(b"\x1aE\xdf\xa3 not really matroska " + secrets.token_bytes(64))
        recording = recordings.add_recording(session, store, session_id=call_id, track="booth-face",
                                             path=track_path, codec="VP8", duration_s=12.5)
        manifest = {"room": call_id, "files": [{"path": "booth-face.webm", "sha256": recording.sha256}]}
        store.absolute(manifest_path).write_text(json.dumps(manifest), encoding="utf-8")
        append_event(session, kind="recording.finished", session_id=call_id, booth_id=ids["booth_id"],
                     data={"manifest": manifest_path, "manifest_sha256": store.sha256_of(manifest_path),
                           "files": [{"recording_id": recording.id, "sha256": recording.sha256}]})
        case = cases.open_case(session, call_session_id=call_id, item_code=ids["item_code"],
                               region_code=ids["region_code"], booth_id=ids["booth_id"], clerk_id=ids["clerk_id"],
                               status=CaseStatus.ACCEPTED, decided_at=datetime.now(timezone.utc),
                               deadline=date.today() + timedelta(days=7))
        job = printjobs.create_print_job(session, store, booth_id=ids["booth_id"], document="receipt",
                                         pdf=b"%PDF-1.4\n%%EOF\n", session_id=call_id, case_id=case.id)
        calls.mark_ended(session, call_id, "clerk_hangup")
        ratings.rate(session, session_id=call_id, level=2, comment="slow")
        alert = alerts.raise_alert(session, kind=AlertKind.BLUE, message="bad rating", case_id=case.id,
                                   session_id=call_id, booth_id=ids["booth_id"])
        session.flush()
        alerts.acknowledge(session, alert.id, user_id=ids["supervisor_id"])
        alerts.set_rules(session, "*", {"yellow_days": 2, "red_enabled": True, "blue_max_level": 2},
                         user_id=ids["supervisor_id"])
        supervisor = session.get(User, ids["supervisor_id"])
        start_web_session(session, supervisor, max_age_s=3600)
        slot = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
        appointment = Appointment(booth_id=ids["booth_id"], item_code=ids["item_code"], clerk_id=ids["clerk_id"],
                                  slot_start=slot, slot_end=slot + timedelta(minutes=15), contact="138****0000")
        session.add(appointment)
        session.flush()
        append_event(session, kind="appointment.booked", actor=f"booth:{ids['booth_id']}", booth_id=ids["booth_id"],
                     data={"appointment_id": appointment.id})
        session.commit()
        ids.update(material_ids=[m.id for m in mats], recording_id=recording.id, case_id=case.id,
                   print_job_id=job.id, alert_id=alert.id, appointment_id=appointment.id)
    return ids
