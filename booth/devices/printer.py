"""Printers: where a decision document ends up on paper."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PAPER_OUT_FLAG = "PAPER_OUT"


class PrinterError(Exception):
    """Printing failed; `state` is the device state to report (paper_out, error, missing)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


@dataclass(frozen=True)
class PrintOutcome:
    """What a successful print left behind (a spool file, a CUPS job id)."""

    reference: str


class Printer(ABC):
    """A printer the agent hands PDFs to."""

    @abstractmethod
    def status(self) -> str:
        """Device state: ok, paper_out, error or missing."""

    @abstractmethod
    def print_pdf(self, data: bytes, *, name: str) -> PrintOutcome:
        """Print one PDF; raise PrinterError when it cannot."""


class SpoolPrinter(Printer):
    """Writes each PDF into `directory` (atomically); a file named PAPER_OUT there means an empty tray."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def status(self) -> str:
        if not self.directory.is_dir():
            return "missing"
        return "paper_out" if (self.directory / PAPER_OUT_FLAG).exists() else "ok"

    def print_pdf(self, data: bytes, *, name: str) -> PrintOutcome:
        state = self.status()
        if state != "ok":
            raise PrinterError(state, f"spool printer {self.directory}: {state}")
        if not data.startswith(b"%PDF-"):
            raise PrinterError("error", "not a PDF")
        safe = "".join(c for c in name if c.isalnum() or c in "-_.") or "job"
        target = self.directory / f"{safe}.pdf"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".spool-", suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
        logger.info("spooled %s (%d bytes)", target, len(data))
        return PrintOutcome(str(target))


class CupsPrinter(Printer):
    """A CUPS queue, through the `lp` command (`lpstat -p` for its state)."""

    def __init__(self, queue: str, *, lp: str = "lp", lpstat: str = "lpstat", timeout_s: float = 30.0) -> None:
        if not queue or queue.startswith("-"):
            raise ValueError("a CUPS queue name is required")
        self.queue = queue
        self.lp = lp
        self.lpstat = lpstat
        self.timeout_s = timeout_s

    def status(self) -> str:
        if shutil.which(self.lp) is None:
            return "missing"
        try:
            result = subprocess.run([self.lpstat, "-p", self.queue], capture_output=True, text=True,
                                    timeout=self.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "error"
        if result.returncode != 0:
            return "missing"
        text = result.stdout.lower()
        if "media-empty" in text or "out of paper" in text or "paper out" in text:
            return "paper_out"
        return "error" if "disabled" in text else "ok"

    def print_pdf(self, data: bytes, *, name: str) -> PrintOutcome:
        if shutil.which(self.lp) is None:
            raise PrinterError("missing", f"{self.lp} not installed")
        try:
            result = subprocess.run([self.lp, "-d", self.queue, "-t", name[:60], "-"], input=data,
                                    capture_output=True, timeout=self.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PrinterError("error", f"lp failed: {exc}") from exc
        if result.returncode != 0:
            message = result.stderr.decode("utf-8", "replace").strip()[:200]
            state = "paper_out" if "paper" in message.lower() or "media" in message.lower() else "error"
            raise PrinterError(state, message or f"lp exited {result.returncode}")
        return PrintOutcome(result.stdout.decode("utf-8", "replace").strip())
