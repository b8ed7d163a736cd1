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
  (`POST /print {print_job_id}`) and asks it for device states
  (`GET /status`).

Either way a job is fetched over HTTP with the booth token
(`GET /api/booth/print-jobs/{id}.pdf`), printed by the Printer adapter, and
the outcome reported (`POST /api/booth/print-jobs/{id}/result`).
Imports only the protocol client: a booth box installs light.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from booth.devices import DocumentCamera, IdReader, Printer, PrinterError
from signaling.protocol_client import ProtocolClient, ReplyError

logger = logging.getLogger(__name__)

DEFAULT_KIOSK_PORT = 8765
MAX_PDF_BYTES = 10 * 1024 * 1024


class AgentError(Exception):
    """The server refused or could not be reached."""


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
            raise AgentError(f"{method} {path}: HTTP {exc.code} {detail}") from None
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
        try:
            self._post_json(f"/api/booth/print-jobs/{report.print_job_id}/result", payload)
        except AgentError as exc:
            logger.error("could not report print job %s: %s", report.print_job_id, exc)
        self.reports.append(report)
        return report

    def upload_still(self, call_id: str, material_code: str | None = None) -> dict[str, Any]:
        """Capture a still with the document camera and upload it as a material of the live call."""
        if self.doc_camera is None:
            raise AgentError("no document camera")
        still = self.doc_camera.capture()
        fields = {"call_id": call_id, **({"material_code": material_code} if material_code else {})}
        body, content_type = _multipart(fields, ("file", "document.jpg", still.content_type, still.data))
        data, _ = self._request("POST", "/api/booth/materials", body, content_type)
        result: dict[str, Any] = json.loads(data)
        return result

    # ------------------------------------------------------------------ socket mode
    async def report_devices(self, client: ProtocolClient) -> None:
        states = self.device_states()
        if states:
            with contextlib.suppress(ReplyError):
                await client.request("device.status", devices=states)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Hold the booth socket until `stop` is set: print, capture, report devices; reconnect on drops."""
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
                await self._serve(client, stop)
            finally:
                await client.close()
            if client.close_code in (4001, 4401, 4403):  # replaced or revoked: do not fight over the socket
                logger.error("booth socket closed with %s; agent stops", client.close_code)
                return

    async def _serve(self, client: ProtocolClient, stop: asyncio.Event) -> None:
        await self.report_devices(client)
        loops = [asyncio.create_task(self._loop(client, mtype, stop)) for mtype in ("print.request", "capture.request")]
        ends = [asyncio.create_task(stop.wait()), asyncio.create_task(client.closed.wait())]
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in loops + ends:
                task.cancel()
            await asyncio.gather(*loops, *ends, return_exceptions=True)

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


# ---------------------------------------------------------------------- kiosk mode


class KioskBridge:
    """A loopback HTTP endpoint through which the kiosk page hands print jobs to the agent.

    Only the server's own origin may call it (CORS), and it accepts only job
    ids: the agent fetches the job itself with its own token, so a page cannot
    make it print arbitrary bytes.
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

            def do_POST(self) -> None:  # noqa: N802
                if not self._origin_ok():
                    return self._json(403, {"error": "origin"})
                if self.path != "/print":
                    return self._json(404, {"error": "not_found"})
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(min(length, 4096)) or b"{}")
                    job_id = int(body["print_job_id"])
                except (ValueError, KeyError, TypeError):
                    return self._json(400, {"error": "invalid"})
                report = bridge.agent.print_job(job_id)
                return self._json(200, {"print_job_id": job_id, "status": report.status, "error": report.error,
                                        "devices": bridge.agent.device_states()})

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
