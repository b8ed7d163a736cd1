"""The booth device agent: printer, document camera and ID reader on the booth box.

Two ways to run, because a booth token holds one socket at a time (a second
connection replaces the first, close code 4001):

- **Socket mode** (`BoothAgent.run`), for a booth box without a kiosk page:
  the agent holds `/ws/booth`, reports `device.status`, prints on
  `print.request` and answers `capture.request` with a still of its
  document camera.
- **Kiosk mode** (`KioskBridge`), when the kiosk page holds the socket: the
  agent listens on loopback (default 127.0.0.1:8765) and the kiosk, opened
  with `?agent=1` (or `?agent=<url>`), hands it each print job
  (`POST /print {print_job_id}`), asks its document camera for a still of
  the live call (`POST /capture {call_id, material_code?}`: the agent
  uploads it with its own token), asks its ID card reader for a card placed
  during the live call (`POST /id-card {call_id, restart?}`, polled by the page) and
  asks it for device states (`GET /status`).  docs/protocol.md, "Booth
  agent (kiosk bridge)", lists the endpoints and their answers.

ID cards (身份证阅读器): a card counts once when it is placed on the reader
(`CardWatch`); the read goes to the server as an `id_photo` material of the
live call (`POST /api/booth/materials`, `id_card_form`), which masks the
number and pushes `idcard.read` to the serving clerk.  In socket mode the
agent polls its reader once a second from `call.connected` until
`call.ended` / `call.transferring` (a transferred call's new clerk gets the
card again); in kiosk mode the page polls `/id-card` while its call is live.
The full number never leaves the agent except in that upload: not in logs,
not in the bridge's answers.  For tests and demos, `cloudseat booth
--id-reader simulated --id-card-file PATH` lays a card on the simulated
reader from the start (a JSON `{"name", "number", "photo"?}`, or `sample`
for the GB 11643 example card), so every call connected reads it once; a
test holds the `SimulatedIdReader` itself and calls `place()` / `remove()`.

Either way a job is fetched over HTTP with the booth token
(`GET /api/booth/print-jobs/{id}.pdf`), printed by the Printer adapter, and
the outcome reported (`POST /api/booth/print-jobs/{id}/result`).
Imports only the protocol client: a booth box installs light.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import io
import json
import logging
import re
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from booth.devices import CardWatch, DocumentCamera, IdReader, Printer, PrinterError, Still, id_card_form
from signaling.protocol_client import ProtocolClient, ReplyError

logger = logging.getLogger(__name__)

DEFAULT_KIOSK_PORT = 8765
MAX_PDF_BYTES = 10 * 1024 * 1024
PREVIEW_PX = 640  # the resident's preview of a capture: enough to see it is the right page
ID_POLL_S = 1.0  # how often socket mode looks at the reader during a live call
_CALL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MATERIAL_CODE = re.compile(r"[a-z0-9_]{1,64}")


class AgentError(Exception):
    """The server refused (`status`: its HTTP status) or could not be reached (`status` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PrintReport:
    """What happened to one print job, as reported to the server."""

    print_job_id: int
    status: str  # printed | failed
    error: str = ""
    device_state: str = "ok"


class BoothAgent:
    """The devices of one booth and their conversation with the server."""

    def __init__(self, server: str, token: str, *, printer: Printer | None = None,
                 doc_camera: DocumentCamera | None = None, id_reader: IdReader | None = None,
                 timeout_s: float = 20.0) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.printer = printer
        self.doc_camera = doc_camera
        self.id_reader = id_reader
        self.timeout_s = timeout_s
        self.reports: list[PrintReport] = []
        self._lock = threading.Lock()  # one job at a time on one printer
        self.card_watch = CardWatch(id_reader) if id_reader is not None else None
        self._card_lock = threading.Lock()  # one read at a time, and the call it counts for
        self._card_call_id: str | None = None
        self._card_task: asyncio.Task[None] | None = None
        self._card_task_call: str | None = None
        self._ended_calls: collections.deque[str] = collections.deque(maxlen=64)  # pushes of two loops may cross

    # ------------------------------------------------------------------ HTTP to the server
    def _request(self, method: str, path: str, body: bytes | None = None,
                 content_type: str | None = None) -> tuple[bytes, str]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json, application/pdf"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.server + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read(MAX_PDF_BYTES + 1), response.headers.get("content-type", "")
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            exc.close()
            raise AgentError(f"{method} {path}: HTTP {exc.code} {detail}", exc.code) from None
        except OSError as exc:
            raise AgentError(f"{method} {path}: {exc}") from None

    def _post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        data, _ = self._request("POST", path, json.dumps(payload).encode("utf-8"), "application/json")
        result: dict[str, Any] = json.loads(data)
        return result

    # ------------------------------------------------------------------ devices
    def device_states(self) -> dict[str, str]:
        """The states `device.status` reports (only devices this agent drives)."""
        states: dict[str, str] = {}
        if self.printer is not None:
            states["printer"] = self.printer.status()
        if self.doc_camera is not None:
            states["doc_camera"] = self.doc_camera.status()
        if self.id_reader is not None:
            states["id_reader"] = self.id_reader.status()
        return states

    def print_job(self, job_id: int) -> PrintReport:
        """Fetch, print and report one job (blocking); never raises for a printer failure."""
        with self._lock:
            try:
                pdf, content_type = self._request("GET", f"/api/booth/print-jobs/{int(job_id)}.pdf")
            except AgentError as exc:
                logger.error("print job %s: download failed: %s", job_id, exc)
                return self._report(PrintReport(job_id, "failed", f"download failed: {exc}"[:200], "ok"))
            if "pdf" not in content_type or not pdf.startswith(b"%PDF-") or len(pdf) > MAX_PDF_BYTES:
                return self._report(PrintReport(job_id, "failed", "not a PDF", "ok"))
            if self.printer is None:
                return self._report(PrintReport(job_id, "failed", "no printer", "missing"))
            try:
                outcome = self.printer.print_pdf(pdf, name=f"print-job-{int(job_id)}")
            except PrinterError as exc:
                logger.warning("print job %s failed: %s (%s)", job_id, exc.message, exc.state)
                return self._report(PrintReport(job_id, "failed", f"{exc.state}: {exc.message}"[:200], exc.state))
            logger.info("print job %s printed (%s)", job_id, outcome.reference)
            return self._report(PrintReport(job_id, "printed", "", "ok"))

    def _report(self, report: PrintReport) -> PrintReport:
        payload: dict[str, Any] = {"status": report.status}
        if report.error:
            payload["error"] = report.error
        # Kept before it is sent: the server's print.result may reach a reader before the POST returns.
        self.reports.append(report)
        try:
            self._post_json(f"/api/booth/print-jobs/{report.print_job_id}/result", payload)
        except AgentError as exc:
            logger.error("could not report print job %s: %s", report.print_job_id, exc)
        return report

    def upload_still(self, call_id: str, material_code: str | None = None) -> dict[str, Any]:
        """Capture a still with the document camera and upload it as a material of the live call.

        The answer is the server's (material id, size, SHA-256 ...) plus `uploaded_sha256`, the
        hash of the bytes sent, so a caller can check the server stored exactly those.
        """
        result, _ = self._capture_and_upload(call_id, material_code)
        return result

    def capture_for_kiosk(self, call_id: str, material_code: str | None = None) -> dict[str, Any]:
        """`upload_still` plus a small JPEG preview (a data URL) the kiosk shows the resident."""
        result, still = self._capture_and_upload(call_id, material_code)
        return {**result, "preview": _preview_data_url(still.data)}

    def _capture_and_upload(self, call_id: str, material_code: str | None) -> tuple[dict[str, Any], Still]:
        if self.doc_camera is None:
            raise AgentError("no document camera")
        still = self.doc_camera.capture()
        fields = {"call_id": call_id, **({"material_code": material_code} if material_code else {})}
        body, content_type = _multipart(fields, ("file", "document.jpg", still.content_type, still.data))
        data, _ = self._request("POST", "/api/booth/materials", body, content_type)
        result: dict[str, Any] = json.loads(data)
        result["uploaded_sha256"] = hashlib.sha256(still.data).hexdigest()
        return result, still

    def upload_id_card(self, call_id: str) -> dict[str, Any] | None:
        """Send a card newly placed on the reader to the live call `call_id`; None when there is none.

        The answer is the server's: material id, `id_name`, `id_number_masked` (never the full
        number).  A first poll for another call than the last one starts afresh, so a card left
        on the reader counts again for the next resident's call.  A read the server could not
        take for a passing reason (network, 5xx) is tried again at the next poll; one it refused
        (4xx: a bad card, a call no longer live) is not.
        """
        if self.card_watch is None:
            raise AgentError("no ID card reader")
        with self._card_lock:
            if call_id != self._card_call_id:
                self.card_watch.reset()
                self._card_call_id = call_id
            card = self.card_watch.poll()
            if card is None:
                return None
            fields, file = id_card_form(call_id, card)
            body, content_type = _multipart(fields, file)
            try:
                data, _ = self._request("POST", "/api/booth/materials", body, content_type)
            except AgentError as exc:
                if exc.status is None or exc.status >= 500:
                    self.card_watch.reset()  # not counted: the next poll sends it again
                raise
        result: dict[str, Any] = json.loads(data)
        result.pop("id_number", None)  # the server never sends it; a bridge answer must never carry it
        logger.info("ID card read sent for call %s (%s)", call_id, result.get("id_number_masked"))
        return result

    def restart_card_watch(self, call_id: str) -> None:
        """A call (re)connected to a clerk: the card on the reader counts again for that clerk."""
        if self.card_watch is None:
            return
        with self._card_lock:
            self.card_watch.reset()
            self._card_call_id = call_id

    # ------------------------------------------------------------------ socket mode
    async def report_devices(self, client: ProtocolClient) -> None:
        states = self.device_states()
        if states:
            with contextlib.suppress(ReplyError):
                await client.request("device.status", devices=states)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Hold the booth socket until `stop` is set: print, capture, send ID cards, report devices; reconnect on drops."""
        stop = stop or asyncio.Event()
        attempt = 0
        while not stop.is_set():
            try:
                client = await ProtocolClient.connect(self.server, "booth", token=self.token)
            except Exception as exc:  # server down, refused: retry gently
                attempt += 1
                logger.warning("booth socket failed (%s); retrying", exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(15.0, 2.0 ** attempt))
                continue
            attempt = 0
            try:
                await self.serve(client, stop)
            finally:
                await client.close()
            if client.close_code in (4001, 4401, 4403):  # replaced or revoked: do not fight over the socket
                logger.error("booth socket closed with %s; agent stops", client.close_code)
                return

    async def serve(self, client: ProtocolClient, stop: asyncio.Event) -> None:
        """Serve one booth socket until it closes or `stop`: what `run` does between reconnects.

        Public for a caller that holds the socket itself (a test that places the calls).
        """
        await self.report_devices(client)
        mtypes = ["print.request", "capture.request"]
        if self.card_watch is not None:
            mtypes += ["call.connected", "call.ended", "call.transferring"]
            live = client.welcome.get("call") or {}
            if live.get("status") == "active" and isinstance(live.get("call_id"), str):
                # Back on the socket during a live call: carry on watching; a card already sent stays sent.
                self._start_card_polling(live["call_id"])
        loops = [asyncio.create_task(self._loop(client, mtype, stop)) for mtype in mtypes]
        ends = [asyncio.create_task(stop.wait()), asyncio.create_task(client.closed.wait())]
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in loops + ends:
                task.cancel()
            await asyncio.gather(*loops, *ends, return_exceptions=True)
            await self._stop_card_polling()

    @property
    def card_polling_call(self) -> str | None:
        """The call whose reader socket mode is polling now, if any."""
        task = self._card_task
        return self._card_task_call if task is not None and not task.done() else None

    def _start_card_polling(self, call_id: str) -> None:
        if self._card_task is not None:
            self._card_task.cancel()
        self._card_task_call = call_id
        self._card_task = asyncio.create_task(self._poll_card(call_id), name=f"id-card {call_id}")

    async def _stop_card_polling(self, call_id: str | None = None) -> None:
        task = self._card_task
        if task is None or (call_id is not None and self._card_task_call != call_id):
            return
        self._card_task = None
        self._card_task_call = None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _poll_card(self, call_id: str) -> None:
        """Look at the reader once a second and send each card placed, until cancelled or the call is over."""
        while True:
            try:
                await asyncio.to_thread(self.upload_id_card, call_id)
            except AgentError as exc:
                logger.error("ID card for call %s not sent: %s", call_id, exc)
                if exc.status in (404, 409):  # the call is not (or no longer) live: nothing more to send
                    return
            except Exception:  # noqa: BLE001 - a reader that fails must not end the agent
                logger.exception("ID card reader failed")
            await asyncio.sleep(ID_POLL_S)  # the polling period itself, not a synchronisation

    async def _loop(self, client: ProtocolClient, mtype: str, stop: asyncio.Event) -> None:
        """Handle every push of `mtype`, one after the other, until the socket closes or `stop`."""
        # The flag, not only the cancellation, ends the loop: asyncio.wait_for (3.11) can swallow
        # a cancel that arrives as its inner wait completes.
        while not stop.is_set():
            try:
                message = await client.wait_for(mtype, timeout_s=3600.0)
            except asyncio.TimeoutError:
                continue
            except ConnectionError:
                return
            await self._on_push(client, message)

    async def _on_push(self, client: ProtocolClient, message: dict[str, Any]) -> None:
        mtype = message.get("type")
        if mtype == "print.request" and isinstance(message.get("print_job_id"), int):
            report = await asyncio.to_thread(self.print_job, message["print_job_id"])
            if report.device_state != "ok" and self.printer is not None:
                await self.report_devices(client)
        elif mtype == "capture.request" and self.doc_camera is not None and message.get("call_id"):
            try:
                await asyncio.to_thread(self.upload_still, str(message["call_id"]), message.get("material_code"))
            except AgentError as exc:
                logger.error("capture for call %s failed: %s", message.get("call_id"), exc)
        elif mtype == "call.connected" and self.card_watch is not None and isinstance(message.get("call_id"), str):
            if message["call_id"] not in self._ended_calls:
                self.restart_card_watch(message["call_id"])
                self._start_card_polling(message["call_id"])
        elif mtype in ("call.ended", "call.transferring") and isinstance(message.get("call_id"), str):
            if mtype == "call.ended":
                self._ended_calls.append(message["call_id"])
            await self._stop_card_polling(message["call_id"])


def _multipart(fields: dict[str, str], file: tuple[str, str, str, bytes]) -> tuple[bytes, str]:
    boundary = "cloudseat-" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                     .encode("utf-8"))
    field_name, filename, content_type, data = file
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode("utf-8") + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _preview_data_url(jpeg: bytes) -> str:
    """A downscaled copy of a still as a data URL (the full still stays with the server)."""
    from PIL import Image  # the document camera adapters need Pillow already

    image = Image.open(io.BytesIO(jpeg))
    image.thumbnail((PREVIEW_PX, PREVIEW_PX))
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


# ---------------------------------------------------------------------- kiosk mode


class KioskBridge:
    """A loopback HTTP endpoint through which the kiosk page hands print jobs and captures to the agent.

    Only the server's own origin may call it (CORS), and it accepts only ids:
    the agent fetches a job itself with its own token, so a page cannot make it
    print arbitrary bytes; a capture goes to the call the server says is live.
    """

    def __init__(self, agent: BoothAgent, *, host: str = "127.0.0.1", port: int = DEFAULT_KIOSK_PORT) -> None:
        self.agent = agent
        parts = urllib.parse.urlsplit(agent.server)
        self.allowed_origin = f"{parts.scheme}://{parts.netloc}"
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                logger.debug("kiosk bridge: " + format, *args)

            def _cors(self) -> None:
                origin = self.headers.get("Origin")
                if origin == bridge.allowed_origin:
                    self.send_header("Access-Control-Allow-Origin", origin)
                    self.send_header("Vary", "Origin")
                    self.send_header("Access-Control-Allow-Methods", "GET, POST")
                    self.send_header("Access-Control-Allow-Headers", "Content-Type")
                    # Chromium's Private Network Access preflight
                    self.send_header("Access-Control-Allow-Private-Network", "true")

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self._cors()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _origin_ok(self) -> bool:
                origin = self.headers.get("Origin")
                return origin is None or origin == bridge.allowed_origin

            def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
                self.send_response(204 if self._origin_ok() else 403)
                self._cors()
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                if not self._origin_ok():
                    return self._json(403, {"error": "origin"})
                if self.path != "/status":
                    return self._json(404, {"error": "not_found"})
                return self._json(200, {"devices": bridge.agent.device_states()})

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(min(length, 4096)) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("not an object")
                return body

            def do_POST(self) -> None:  # noqa: N802
                if not self._origin_ok():
                    return self._json(403, {"error": "origin"})
                if self.path == "/print":
                    return self._print()
                if self.path == "/capture":
                    return self._capture()
                if self.path == "/id-card":
                    return self._id_card()
                return self._json(404, {"error": "not_found"})

            def _print(self) -> None:
                try:
                    job_id = int(self._body()["print_job_id"])
                except (ValueError, KeyError, TypeError):
                    return self._json(400, {"error": "invalid"})
                report = bridge.agent.print_job(job_id)
                return self._json(200, {"print_job_id": job_id, "status": report.status, "error": report.error,
                                        "devices": bridge.agent.device_states()})

            def _capture(self) -> None:
                try:
                    body = self._body()
                except ValueError:
                    return self._json(400, {"error": "invalid"})
                call_id, code = body.get("call_id"), body.get("material_code")
                if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id):
                    return self._json(400, {"error": "invalid", "detail": "call_id must be a lowercase UUID"})
                if code is not None and (not isinstance(code, str) or not _MATERIAL_CODE.fullmatch(code)):
                    return self._json(400, {"error": "invalid", "detail": "material_code must be a checklist code"})
                if bridge.agent.doc_camera is None:
                    return self._json(409, {"error": "no_doc_camera"})
                try:
                    result = bridge.agent.capture_for_kiosk(call_id, code)
                except AgentError as exc:
                    logger.error("capture for call %s failed: %s", call_id, exc)
                    return self._json(502, {"error": "upload_failed", "detail": str(exc)[:200]})
                except Exception as exc:  # noqa: BLE001 - a camera that fails must not kill the bridge
                    logger.exception("document camera failed")
                    return self._json(502, {"error": "camera_failed", "detail": str(exc)[:200]})
                return self._json(201, result)

            def _id_card(self) -> None:
                try:
                    body = self._body()
                except ValueError:
                    return self._json(400, {"error": "invalid"})
                call_id, restart = body.get("call_id"), body.get("restart", False)
                if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id):
                    return self._json(400, {"error": "invalid", "detail": "call_id must be a lowercase UUID"})
                if not isinstance(restart, bool):
                    return self._json(400, {"error": "invalid", "detail": "restart must be true or false"})
                if bridge.agent.card_watch is None:
                    return self._json(409, {"error": "no_id_reader"})
                try:
                    if restart:  # the call (re)connected to a clerk: a card lying there counts again
                        bridge.agent.restart_card_watch(call_id)
                    result = bridge.agent.upload_id_card(call_id)
                except AgentError as exc:
                    logger.error("ID card for call %s not sent: %s", call_id, exc)
                    return self._json(502, {"error": "upload_failed", "status": exc.status, "detail": str(exc)[:200]})
                except Exception as exc:  # noqa: BLE001 - a reader that fails must not kill the bridge
                    logger.exception("ID card reader failed")
                    return self._json(502, {"error": "reader_failed", "detail": str(exc)[:200]})
                if result is None:
                    self.send_response(204)
                    self._cors()
                    self.end_headers()
                    return None
                return self._json(201, {**result, "name": result.get("id_name", ""),
                                        "masked": result.get("id_number_masked", "")})

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="kiosk-bridge", daemon=True)
        self._thread.start()
        logger.info("kiosk bridge on %s for %s", self.url, self.allowed_origin)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
