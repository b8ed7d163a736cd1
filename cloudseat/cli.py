"""The `cloudseat` command line: serve, admin, verify and purge.

Admin commands talk to the database named by the settings directly (no
server needed), print a human line by default and one JSON object with
`--json`.  Errors print one line on stderr and exit 2 (bad input) or
1 (a check failed).
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from cloudseat.logs import setup_logging, uvicorn_log_config
from cloudseat.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A command was refused; the message is printed as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        setup_logging(settings.log_level, settings.log_format, settings.node_id)
        handler: Callable[[argparse.Namespace, Settings], int] = args.handler
        return handler(args, settings)
    except SettingsError as exc:
        print(f"cloudseat: bad setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:
        print(f"cloudseat: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cloudseat", description="Cloud seat: remote video windows for public services.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="seed demo data into an empty database and print the logins")
    serve.add_argument("--certfile", type=Path, help="serve https/wss with this PEM certificate (chain)"
                       " [CLOUDSEAT_TLS_CERTFILE]")
    serve.add_argument("--keyfile", type=Path, help="the certificate's PEM private key [CLOUDSEAT_TLS_KEYFILE]")
    serve.set_defaults(handler=cmd_serve)

    verify = commands.add_parser("verify", help="check every event chain and stored file hash, purges, manifests "
                                                "and access events")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=cmd_verify)

    purge = commands.add_parser("purge", help="delete recordings and materials past retention (run it from cron)")
    purge.add_argument("--dry-run", action="store_true", help="list what would be deleted, change nothing")
    purge.add_argument("--now", type=_iso_datetime, metavar="ISO",
                       help="the clock to judge expiry by (ISO 8601; default: now; without offset: UTC)")
    purge.add_argument("--json", action="store_true")
    purge.set_defaults(handler=cmd_purge)

    booth = commands.add_parser("booth", help="the booth device agent (printer, document camera, ID card reader), or --simulate")
    booth.add_argument("--simulate", action="store_true",
                       help="speak the real protocol as a kiosk would, without devices (needs --item)")
    booth.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    booth.add_argument("--token", required=True)
    booth.add_argument("--item", help="service item code to call for (--simulate)")
    booth.add_argument("--printer", help="lp:QUEUE (CUPS) or spool:DIR (writes PDFs into DIR)")
    booth.add_argument("--doc-camera", help="/dev/videoN (V4L2 via PyAV) or synthetic")
    booth.add_argument("--id-reader", choices=["simulated"])
    booth.add_argument("--id-card-file", metavar="PATH",
                       help="lay a card on the simulated ID reader from the start: JSON {name, number, photo?} "
                            "or 'sample'; every call connected reads it once")
    booth.add_argument("--kiosk", nargs="?", const="127.0.0.1:8765", metavar="HOST:PORT",
                       help="listen for the kiosk page on this box (the page holds the booth socket; open it with ?agent=1) "
                            "instead of holding the socket")
    booth.add_argument("--calls", type=int, default=1)
    booth.add_argument("--priority", action="store_true", help="ask for the priority lane (绿色通道)")
    booth.add_argument("--abandon-rate", type=float, default=0.0, help="share of calls hung up before answer")
    booth.add_argument("--abandon-after", type=float, default=2.0, help="longest wait before such a hang-up (s)")
    booth.add_argument("--answer-timeout", type=float, default=120.0)
    booth.add_argument("--seed", type=int)
    booth.add_argument("--media", action="store_true",
                       help="also send synthetic face/document camera and microphone to the media hub (needs aiortc)")
    booth.set_defaults(handler=cmd_booth_simulate)

    seat = commands.add_parser("seat", help="a simulated clerk")
    seat.add_argument("--simulate", action="store_true", required=True)
    seat.add_argument("--server", required=True)
    seat.add_argument("--user", required=True)
    seat.add_argument("--password", required=True)
    seat.add_argument("--answer-after", type=float, default=1.0, help="seconds before accepting an offer")
    seat.add_argument("--handle", type=float, default=5.0, help="seconds a call lasts")
    seat.add_argument("--calls", type=int, help="stop after this many calls (default: run until interrupted)")
    seat.add_argument("--seed", type=int)
    seat.add_argument("--media", action="store_true",
                      help="also send a synthetic camera and microphone to the media hub (needs aiortc)")
    seat.set_defaults(handler=cmd_seat_simulate)

    admin = commands.add_parser("admin", help="manage regions, users, booths and the catalogue")
    admin_cmds = admin.add_subparsers(dest="admin_command", required=True)

    region = admin_cmds.add_parser("create-region", help="add a region (town or street)")
    region.add_argument("--code", required=True)
    region.add_argument("--name-zh", required=True)
    region.add_argument("--name-en", required=True)
    region.add_argument("--json", action="store_true")
    region.set_defaults(handler=cmd_create_region)

    user = admin_cmds.add_parser("create-user", help="add a clerk, supervisor or admin")
    user.add_argument("--username", required=True)
    user.add_argument("--role", required=True, choices=["clerk", "supervisor", "admin"])
    user.add_argument("--display-name", default="")
    user.add_argument("--skills", default="", help="comma-separated skill codes")
    user.add_argument("--regions", default="", help="comma-separated region codes the user may serve")
    pw = user.add_mutually_exclusive_group()
    pw.add_argument("--password", help="the password (default: a generated one, printed once)")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user.add_argument("--json", action="store_true")
    user.set_defaults(handler=cmd_create_user)

    booth = admin_cmds.add_parser("create-booth", help="add a booth and print its token once")
    booth.add_argument("--name", required=True)
    booth.add_argument("--region", required=True)
    booth.add_argument("--address", default="")
    booth.add_argument("--json", action="store_true")
    booth.set_defaults(handler=cmd_create_booth)

    revoke = admin_cmds.add_parser("revoke-booth", help="revoke a booth's token")
    revoke.add_argument("--name", required=True)
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(handler=cmd_revoke_booth)

    catalog = admin_cmds.add_parser("load-catalog", help="load or update the service catalogue (and regions)")
    catalog.add_argument("file", nargs="?", help="catalogue JSON (default: the packaged sample)")
    catalog.add_argument("--regions", help="regions JSON to load as well")
    catalog.add_argument("--json", action="store_true")
    catalog.set_defaults(handler=cmd_load_catalog)

    hold = admin_cmds.add_parser("legal-hold", help="put a case under legal hold (nothing of it is purged) or release it")
    hold.add_argument("case_number", metavar="CASE_NUMBER")
    on_off = hold.add_mutually_exclusive_group(required=True)
    on_off.add_argument("--on", dest="on", action="store_true", default=None)
    on_off.add_argument("--off", dest="on", action="store_false")
    hold.add_argument("--reason", required=True, help="why (a court order, a complaint ...); logged")
    hold.add_argument("--json", action="store_true")
    hold.set_defaults(handler=cmd_legal_hold)
    from cloudseat.cli_admin_data import register  # admin migrate, backup, restore
    register(admin_cmds)
    return parser


def _iso_datetime(value: str) -> datetime:
    """An ISO 8601 time for --now; naive means UTC (the records' convention)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _engine(settings: Settings) -> Engine:
    from records.db import create_schema, make_engine
    from records.migrate import SchemaError

    engine = make_engine(settings.database_url)
    try:
        create_schema(engine)
    except SchemaError as exc:  # behind head or unknown: the message names `cloudseat admin migrate`
        engine.dispose()
        raise CommandError(exc.message) from None
    return engine


def _emit(args: argparse.Namespace, payload: dict[str, Any], human: str) -> None:
    print(json.dumps(payload, ensure_ascii=False) if getattr(args, "json", False) else human)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _in_session(settings: Settings, action: Callable[[Session], Any]) -> Any:
    """Run `action` in one transaction; records' typed errors become one-line command errors."""
    from records.errors import RecordsError

    engine = _engine(settings)
    try:
        with Session(engine) as session:
            result = action(session)
            session.commit()
            return result
    except RecordsError as exc:
        raise CommandError(f"{exc.code}: {exc.message}") from None
    finally:
        engine.dispose()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from cloudseat.app import create_app
    from cloudseat.heap import settle_for_serving

    certfile = args.certfile or settings.tls_certfile
    keyfile = args.keyfile or settings.tls_keyfile
    if (certfile is None) != (keyfile is None):
        raise CommandError("--certfile and --keyfile go together (or CLOUDSEAT_TLS_CERTFILE and CLOUDSEAT_TLS_KEYFILE)")
    if certfile is not None and keyfile is not None:
        from cloudseat.tls import TlsPairError, check_tls_pair

        try:
            check_tls_pair(certfile, keyfile)
        except TlsPairError as exc:
            raise CommandError(str(exc)) from None
    if args.demo:
        from cloudseat.demo import seed_demo

        engine = _engine(settings)
        try:
            logins = seed_demo(engine, settings.data_dir)
        finally:
            engine.dispose()
        base = f"{'https' if certfile else 'http'}://{args.host}:{args.port}"
        _print_demo(logins.as_json(), base, settings.data_dir)
    node_nonce = None
    if settings.redis_url is not None:
        from signaling.node_claim import NodeIdTaken, claim_sync

        node_nonce = uuid.uuid4().hex
        try:  # before uvicorn, so a duplicate node id is one line and exit 2, not a lifespan traceback
            claim_sync(settings.redis_url, settings.redis_prefix, settings.node_id, node_nonce)
        except NodeIdTaken as exc:
            raise CommandError(str(exc)) from None
    _engine(settings).dispose()  # a schema the lifespan would refuse: one line and exit 2, not a traceback
    app = create_app(settings, node_nonce=node_nonce)
    settle_for_serving()
    # loop and http stay "auto": uvloop and httptools (dependencies) when installed, asyncio and h11 if not
    # proxy_headers off: uvicorn would believe X-Forwarded-For from any loopback peer; the app reads it
    # only from CLOUDSEAT_TRUSTED_PROXIES (signaling.access.client_address).
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(), ws="websockets-sansio",
                proxy_headers=False, log_config=uvicorn_log_config(settings.log_format),
                ssl_certfile=certfile, ssl_keyfile=keyfile)
    return EXIT_OK


def _print_demo(logins: dict[str, Any], base: str, data_dir: Path) -> None:
    print("cloudseat demo", flush=True)
    print(f"  login page:  {base}/login")
    for user in logins["users"]:
        print(f"  {user['role']:<11} {user['username']:<12} password {user['password']}")
    for booth in logins["booths"]:
        print(f"  booth {booth['name']} ({booth['region']}): {base}/kiosk#token={booth['token']}")
    print(f"  (also in {data_dir / 'demo.json'})", flush=True)


def cmd_booth_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Make calls as a booth (--simulate; the last line is a JSON summary), or run the device agent."""
    import asyncio

    from booth.simulator import BoothPlan, run_booth

    if not args.simulate:
        return cmd_booth_agent(args)
    if not args.item:
        raise CommandError("--simulate needs --item")
    if args.calls < 1 or not 0 <= args.abandon_rate <= 1:
        raise CommandError("--calls must be >= 1 and --abandon-rate between 0 and 1")
    plan = BoothPlan(item_code=args.item, calls=args.calls, priority=args.priority, abandon_rate=args.abandon_rate,
                     abandon_after_s=args.abandon_after, answer_timeout_s=args.answer_timeout, seed=args.seed)
    summary = asyncio.run(run_booth(args.server.rstrip("/"), args.token, plan, media=args.media))
    print(summary.to_json(), flush=True)
    return EXIT_OK if summary.all_answered and (summary.media_ok or not args.media) else EXIT_CHECK_FAILED


def _booth_devices(args: argparse.Namespace) -> dict[str, Any]:
    from booth.devices import CupsPrinter, SimulatedIdReader, SpoolPrinter, SyntheticCamera, V4L2Camera

    devices: dict[str, Any] = {}
    if args.printer:
        kind, _, where = args.printer.partition(":")
        if kind == "lp" and where:
            devices["printer"] = CupsPrinter(where)
        elif kind == "spool" and where:
            Path(where).mkdir(parents=True, exist_ok=True)
            devices["printer"] = SpoolPrinter(Path(where))
        else:
            raise CommandError("--printer must be lp:QUEUE or spool:DIR")
    if args.doc_camera:
        devices["doc_camera"] = SyntheticCamera() if args.doc_camera == "synthetic" else V4L2Camera(args.doc_camera)
    if args.id_reader == "simulated":
        devices["id_reader"] = SimulatedIdReader()
        if args.id_card_file:
            from booth.devices.id_reader import load_card

            try:
                devices["id_reader"].place(load_card(args.id_card_file))
            except ValueError as exc:
                raise CommandError(f"--id-card-file: {exc}") from None
    elif args.id_card_file:
        raise CommandError("--id-card-file needs --id-reader simulated")
    return devices


def cmd_booth_agent(args: argparse.Namespace) -> int:
    """Run the booth device agent until interrupted (socket mode, or --kiosk bridge mode)."""
    import asyncio
    import threading

    from booth.agent import BoothAgent, KioskBridge

    agent = BoothAgent(args.server.rstrip("/"), args.token, **_booth_devices(args))
    if args.kiosk:
        host, _, port = args.kiosk.rpartition(":")
        if not port.isdigit():
            raise CommandError("--kiosk must be HOST:PORT")
        bridge = KioskBridge(agent, host=host or "127.0.0.1", port=int(port))
        bridge.start()
        print(f"cloudseat booth agent: kiosk bridge on {bridge.url}; open the kiosk with ?agent={bridge.url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            bridge.stop()
        return EXIT_OK
    print(f"cloudseat booth agent: devices {agent.device_states()}, connecting to {agent.server}", flush=True)
    try:
        asyncio.run(agent.run())
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_seat_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Serve offers as a clerk; prints a JSON summary when done (or interrupted)."""
    import asyncio

    from seat.simulator import SeatPlan, run_seat

    plan = SeatPlan(answer_after_s=args.answer_after, handle_s=args.handle, calls=args.calls, seed=args.seed)
    try:
        summary = asyncio.run(run_seat(args.server.rstrip("/"), args.user, args.password, plan, media=args.media))
    except KeyboardInterrupt:
        return EXIT_OK
    print(summary.to_json(), flush=True)
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from records.storage import FileStore
    from records.verify import verify_all

    engine = _engine(settings)
    try:
        with Session(engine) as session:
            report = verify_all(session, FileStore(settings.data_dir / "files"))
    finally:
        engine.dispose()
    payload = {"ok": report.ok, "first_break": report.first_break,
               "checked_events": report.checked_events, "checked_files": report.checked_files,
               "checked_purges": report.checked_purges, "checked_manifests": report.checked_manifests,
               "checked_accesses": report.checked_accesses, "problems": list(report.problems)}
    if report.ok:
        human = (f"ok: {report.checked_events} events, {report.checked_files} files, "
                 f"{report.checked_manifests} manifests, {report.checked_purges} purged files and "
                 f"{report.checked_accesses} access events verified")
    else:
        human = "\n".join([f"BROKEN: {report.first_break}", *(f"also: {p}" for p in report.problems[1:])])
    _emit(args, payload, human)
    return EXIT_OK if report.ok else EXIT_CHECK_FAILED


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    """Purge (or with --dry-run list) what is past retention; one line per file, then a summary line."""
    from records.retention import RetentionPolicy, purge
    from records.storage import FileStore

    policy = RetentionPolicy(settings.retention_recordings_days, settings.retention_materials_days)
    now = args.now or datetime.now(timezone.utc)
    store = FileStore(settings.data_dir / "files")
    report = _in_session(settings, lambda session: purge(session, store, now=now, policy=policy,
                                                         dry_run=args.dry_run, actor="cli"))
    verb = "would delete" if report.dry_run else "deleted"
    lines = [f"{verb} {f.kind} {f.id} {f.path} (session {f.session_id}, {f.size} bytes)" for f in report.purged]
    lines += [f"{verb} leftover of an interrupted purge: {f.kind} {f.id} {f.path}" for f in report.leftovers]
    summary = (f"{'dry run: ' if report.dry_run else ''}{report.recordings} recordings and {report.materials} "
               f"materials {'expired' if report.dry_run else 'purged'} ({report.bytes} bytes), "
               f"{len(report.leftovers)} leftovers, {len(report.held_sessions)} sessions kept under legal hold; "
               f"cut-offs {report.recordings_cutoff.isoformat()} (recordings, "
               f"{settings.retention_recordings_days} days) and {report.materials_cutoff.isoformat()} "
               f"(materials, {settings.retention_materials_days} days)")
    _emit(args, report.to_json(), "\n".join([*lines, summary]))
    return EXIT_OK


def cmd_legal_hold(args: argparse.Namespace, settings: Settings) -> int:
    from records.cases import set_legal_hold

    def act(session: Session) -> tuple[str, bool, int | None]:
        case = set_legal_hold(session, args.case_number, args.on, actor="cli", reason=args.reason)
        return case.number, case.legal_hold, case.id

    number, on, case_id = _in_session(settings, act)
    _emit(args, {"case_id": case_id, "number": number, "legal_hold": on},
          f"case {number}: legal hold {'on' if on else 'off'}")
    return EXIT_OK


def cmd_create_region(args: argparse.Namespace, settings: Settings) -> int:
    from records.accounts import create_region

    def act(session: Session) -> None:
        create_region(session, code=args.code, name_zh=args.name_zh, name_en=args.name_en)

    _in_session(settings, act)
    _emit(args, {"code": args.code}, f"region {args.code} created")
    return EXIT_OK


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    from records.accounts import create_user
    from records.models import Role

    generated = args.password is None and not args.password_stdin
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = args.password if args.password is not None else secrets.token_urlsafe(12)

    def act(session: Session) -> int | None:
        user = create_user(session, username=args.username, password=password, role=Role(args.role),
                           display_name=args.display_name, skills=_split(args.skills),
                           regions=_split(args.regions), actor="cli")
        return user.id

    user_id = _in_session(settings, act)
    payload: dict[str, Any] = {"id": user_id, "username": args.username, "role": args.role}
    human = f"user {args.username} ({args.role}) created"
    if generated:
        payload["password"] = password
        human += f"; password: {password}"
    _emit(args, payload, human)
    return EXIT_OK


def cmd_create_booth(args: argparse.Namespace, settings: Settings) -> int:
    from records.accounts import create_booth

    def act(session: Session) -> tuple[int | None, str]:
        booth, token = create_booth(session, name=args.name, region_code=args.region, address=args.address, actor="cli")
        return booth.id, token

    booth_id, token = _in_session(settings, act)
    link = f"{settings.public_base_url}/kiosk#token={token}"
    _emit(args, {"id": booth_id, "name": args.name, "region": args.region, "token": token, "kiosk_url": link},
          f"booth {args.name} created. Its token is shown only now:\n  {token}\n  kiosk link: {link}")
    return EXIT_OK


def cmd_revoke_booth(args: argparse.Namespace, settings: Settings) -> int:
    from records.accounts import revoke_booth

    _in_session(settings, lambda session: revoke_booth(session, name=args.name, actor="cli"))
    _emit(args, {"name": args.name, "revoked": True}, f"booth {args.name} revoked")
    return EXIT_OK


def cmd_load_catalog(args: argparse.Namespace, settings: Settings) -> int:
    from records.catalog import default_catalog_path, load_catalog_file, load_regions_file, upsert_catalog, upsert_regions

    try:
        catalog = load_catalog_file(Path(args.file) if args.file else default_catalog_path())
        regions = load_regions_file(Path(args.regions)) if args.regions else None
    except (OSError, ValueError) as exc:
        raise CommandError(f"invalid catalogue: {exc}") from None

    def act(session: Session) -> tuple[int, int]:
        if regions is not None:
            upsert_regions(session, regions)
        return upsert_catalog(session, catalog)

    created, updated = _in_session(settings, act)
    _emit(args, {"created": created, "updated": updated, "items": len(catalog.items)},
          f"catalogue loaded: {created} items created, {updated} updated, {len(catalog.items)} in file")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
