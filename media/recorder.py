"""Stream-copy recording: one Matroska/WebM file per published track.

A `TrackRecorder` is just one more sink of a `PassthroughSource` (as Galène's
recorder is one more subscriber): it writes the encoded frames exactly as the
publisher sent them with PyAV, no decode and no encode -- a few percent of the
CPU aiortc's MediaRecorder needs, at source quality (reference RESULTS.md).

Crash safety: the muxer flushes after every packet (`flush_packets=1`) and
closes a cluster at least every second (`cluster_time_limit=1000`), so a
`kill -9` loses only the cluster being written (about 1 s; see the crash
table in RESULTS.md and `tests/integration/test_media_recovery.py`).  A
sidecar `<file>.partial.json` is written when a file opens and removed when it
closes cleanly; `recover_unclosed` finds the sidecars a crashed run left and
remuxes those files by stream copy, which restores duration and cues.

Timestamps are milliseconds since the session start the caller passes in, so
every track of a session lines up in a player, and a pause stays a pause.
Within a track they follow the publisher's RTP clock (smooth).  The anchor --
which RTP time is which session time -- is the median, over the first few
frames, of when each frame's first packet reached the hub
(`EncodedFrame.arrived_at`): not of when the jitter buffer released it, which
lags by a frame interval (333 ms on a 3 fps document camera, 67 ms on a 15 fps
face camera) and would skew tracks of different frame rates apart.  So the
first frames are held for up to `ANCHOR_HOLD_S` before the file opens.  The
anchor moves if RTP and arrival disagree by more than `RESYNC_MS` (a
publisher restart), or earlier when a frame arrives more than `EARLY_MS`
before the anchor says it was sent: the first frames were held up (a busy
start delays them all alike, so their median is late too) and the least
delayed arrivals are the truer clock.  Timestamps are always strictly
increasing.
"""

from __future__ import annotations

import datetime
import fractions
import hashlib
import json
import logging
import os
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av

from media.errors import RecordingError
from media.passthrough import EncodedFrame, PassthroughSource, vp8_frame_size

logger = logging.getLogger(__name__)

MS_TIME_BASE = fractions.Fraction(1, 1000)
RESYNC_MS = 2000.0
EARLY_MS = 80.0  # arrival this much before the anchor's prediction moves it (above network jitter)
ANCHOR_SAMPLES = 3  # first-packet arrivals to take the median of
ANCHOR_HOLD_S = 1.5  # longest the first frames wait for those samples
PARTIAL_SUFFIX = ".partial.json"
MUX_OPTIONS = {"flush_packets": "1", "cluster_time_limit": "1000"}
# RTP codec name -> (FFmpeg codec, container format, file extension)
_CONTAINERS = {
    "VP8": ("vp8", "webm", ".webm"),
    "OPUS": ("opus", "webm", ".webm"),
    "H264": ("h264", "matroska", ".mkv"),
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class RecordingTotals:
    """Running totals over every recorder that shares it (the hub's, read by metrics); never reset."""

    bytes_written: int = 0  # encoded media bytes muxed into files (container overhead not counted)
    files_opened: int = 0


def container_for(codec: str) -> tuple[str, str, str]:
    """(FFmpeg codec, container format, extension) for an RTP codec name."""
    try:
        return _CONTAINERS[codec.upper()]
    except KeyError:
        raise RecordingError("codec_not_recordable", f"no stream-copy container for {codec}") from None


@dataclass(frozen=True)
class RecordedFile:
    """One finished recording file, as the manifest and the records layer see it."""

    path: Path
    codec: str
    kind: str
    duration_s: float
    size: int
    sha256: str
    frames: int
    closed_cleanly: bool
    recovered: bool = False
    start_s: float = 0.0  # first frame, seconds after the session start
    participant: str = ""
    track_id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("audio", "video"):
            raise ValueError(f"kind must be audio or video, not {self.kind!r}")
        if self.size < 0 or self.frames < 0 or self.duration_s < 0:
            raise ValueError("size, frames and duration_s must not be negative")
        if not _SHA256.match(self.sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        data = asdict(self)
        path = Path(self.path)
        if relative_to is not None and path.is_relative_to(relative_to):
            path = path.relative_to(relative_to)
        data["path"] = str(path)
        return data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ProbeResult:
    frames: int
    start_s: float
    duration_s: float


def probe(path: Path) -> ProbeResult:
    """Count packets and measure the first-to-last-frame span, by demuxing only."""
    frames = 0
    first: float | None = None
    last = 0.0
    step = 0.0
    with av.open(str(path)) as container:
        stream = container.streams[0]
        time_base = stream.time_base or MS_TIME_BASE
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            t = float(packet.pts * time_base)
            if first is None:
                first = t
            else:
                step = t - last
            last = t
            frames += 1
    if first is None:
        return ProbeResult(0, 0.0, 0.0)
    return ProbeResult(frames, first, last - first + step)


def _h264_size(data: bytes) -> tuple[int, int]:
    # One decode of the first keyframe, only to learn the picture size the
    # container header must state (cheaper and safer than an SPS parser).
    decoder = av.CodecContext.create("h264", "r")
    frames = decoder.decode(av.Packet(data))
    if not frames:
        frames = decoder.decode(None)
    if not frames:
        raise RecordingError("bad_keyframe", "cannot read the size of the first H.264 keyframe")
    frame = frames[0]
    return frame.width, frame.height


class TrackRecorder:
    """Writes one track's encoded frames into ``<stem><ext>`` by stream copy.

    Use as a sink: ``source.add_sink(recorder)``; the source then asks the
    publisher for a keyframe, and the file opens at the first one.
    """

    def __init__(
        self,
        stem: Path,
        *,
        kind: str,
        codec: str,
        session_start: float,
        participant: str = "",
        track_id: str = "",
        totals: RecordingTotals | None = None,
    ) -> None:
        self.codec = codec
        self.totals = totals if totals is not None else RecordingTotals()
        self.kind = kind
        self._ffmpeg_codec, self._format, extension = container_for(codec)
        self.path = Path(str(stem) + extension)
        self.session_start = session_start
        self.participant = participant
        self.track_id = track_id
        self.frames = 0
        self.failed = False
        self._container: av.container.OutputContainer | None = None
        self._stream: av.stream.Stream | None = None
        self._anchor: tuple[float, int] | None = None  # (ms, rtp timestamp)
        self._held: list[EncodedFrame] = []
        self._first_pts: int | None = None
        self._last_pts: int | None = None
        self._last_step = 0
        self._source: PassthroughSource | None = None
        self._closed = False

    @property
    def sidecar(self) -> Path:
        return self.path.with_name(self.path.name + PARTIAL_SUFFIX)

    # -- FrameSink -------------------------------------------------------------------

    def on_frame(self, frame: EncodedFrame) -> None:
        if self._closed or self.failed:
            return
        try:
            if self._anchor is None:
                if not self._held and not frame.keyframe:
                    return
                self._held.append(frame)
                if self._ready_to_anchor():
                    self._start()
                return
            self._write(frame)
        except (av.FFmpegError, OSError, RecordingError) as exc:
            logger.error("recording %s failed: %s", self.path, exc)
            self.failed = True
            self._close_container()

    def on_source_ended(self, source: PassthroughSource) -> None:
        logger.debug("source ended for %s after %d frames", self.path, self.frames)

    # -- writing ---------------------------------------------------------------------

    def _open(self, frame: EncodedFrame) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "file": self.path.name,
            "codec": self.codec,
            "kind": self.kind,
            "participant": self.participant,
            "track_id": self.track_id,
            "session_start": self.session_start,
            "opened_at": frame.received_at,
        }
        self.sidecar.write_text(json.dumps(meta))
        container = av.open(str(self.path), mode="w", format=self._format, options=dict(MUX_OPTIONS))
        if self.kind == "video":
            size = vp8_frame_size(frame.data) if self.codec.upper() == "VP8" else _h264_size(frame.data)
            if size is None:
                raise RecordingError("bad_keyframe", "cannot read the size of the first VP8 keyframe")
            stream = container.add_mux_stream(self._ffmpeg_codec, width=size[0], height=size[1])
        else:
            # Matroska wants an OpusHead as CodecPrivate; PyAV can only set it
            # through an (unused) encoder context, whose header states the
            # standard 312-sample pre-skip (6.5 ms).
            stream = container.add_stream("libopus", rate=48000, layout="stereo")
        stream.time_base = MS_TIME_BASE
        self._container = container
        self._stream = stream
        self.totals.files_opened += 1
        logger.info("recording %s (%s %s)", self.path, self.kind, self.codec)

    def _session_ms(self, when: float) -> float:
        return (when - self.session_start) * 1000.0

    def _ready_to_anchor(self) -> bool:
        samples = sum(1 for f in self._held if f.arrived_at is not None)
        waited = self._held[-1].received_at - self._held[0].received_at
        return samples >= ANCHOR_SAMPLES or waited >= ANCHOR_HOLD_S

    def _start(self) -> None:
        """Anchor the RTP clock on the held frames, open the file, write them."""
        first = self._held[0]

        def rtp_ms(f: EncodedFrame) -> float:
            return (f.timestamp - first.timestamp) * 1000.0 / f.clock_rate

        arrivals = [self._session_ms(f.arrived_at) - rtp_ms(f) for f in self._held if f.arrived_at is not None]
        if arrivals:
            anchor_ms = statistics.median(arrivals)
        else:  # no first-packet time known: the least-delayed release is closest
            anchor_ms = min(self._session_ms(f.received_at) - rtp_ms(f) for f in self._held)
        self._anchor = (anchor_ms, first.timestamp)
        self._open(first)
        held, self._held = self._held, []
        for frame in held:
            self._write(frame)

    def _pts_ms(self, frame: EncodedFrame) -> int:
        assert self._anchor is not None
        observed = self._session_ms(frame.arrived_at if frame.arrived_at is not None else frame.received_at)
        anchor_ms, anchor_ts = self._anchor
        media_ms = anchor_ms + (frame.timestamp - anchor_ts) * 1000.0 / frame.clock_rate
        if abs(media_ms - observed) > RESYNC_MS:
            logger.warning("%s: RTP clock and arrival differ by %.0f ms; re-anchoring", self.path, media_ms - observed)
            self._anchor = (observed, frame.timestamp)
            media_ms = observed
        elif media_ms - observed > EARLY_MS:
            logger.info("%s: a frame arrived %.0f ms before the anchor's time; anchoring earlier",
                        self.path, media_ms - observed)
            self._anchor = (observed, frame.timestamp)
            media_ms = observed
        pts = max(0, round(media_ms))
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        return pts

    def _write(self, frame: EncodedFrame) -> None:
        assert self._container is not None and self._stream is not None
        pts = self._pts_ms(frame)
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = pts
        packet.time_base = MS_TIME_BASE
        packet.is_keyframe = frame.keyframe
        packet.stream = self._stream
        self._container.mux(packet)
        if self._first_pts is None:
            self._first_pts = pts
        if self._last_pts is not None:
            self._last_step = pts - self._last_pts
        self._last_pts = pts
        self.frames += 1
        self.totals.bytes_written += len(frame.data)

    def _close_container(self) -> bool:
        container, self._container = self._container, None
        if container is None:
            return False
        try:
            container.close()
            return True
        except (av.FFmpegError, OSError) as exc:
            logger.error("closing %s failed: %s", self.path, exc)
            return False

    def close(self) -> RecordedFile | None:
        """Finish the file; None if no frame was ever written."""
        if self._closed:
            return None
        self._closed = True
        if self._source is not None:
            self._source.remove_sink(self)
        if self._held and not self.failed:
            try:
                self._start()  # a short recording: anchor on what there is
            except (av.FFmpegError, OSError, RecordingError) as exc:
                logger.error("recording %s failed: %s", self.path, exc)
                self.failed = True
        had_container = self._container is not None
        clean = self._close_container() and not self.failed
        if not had_container and not self.path.exists():
            return None
        if clean:
            self.sidecar.unlink(missing_ok=True)
        else:
            return None  # left with its sidecar for recover_unclosed
        first = self._first_pts or 0
        last = self._last_pts or 0
        return RecordedFile(
            path=self.path,
            codec=self.codec,
            kind=self.kind,
            duration_s=(last - first + self._last_step) / 1000.0,
            size=self.path.stat().st_size,
            sha256=sha256_file(self.path),
            frames=self.frames,
            closed_cleanly=True,
            start_s=first / 1000.0,
            participant=self.participant,
            track_id=self.track_id,
        )

    def record(self, source: PassthroughSource) -> None:
        """Subscribe to ``source`` (remembered so `close` unsubscribes)."""
        self._source = source
        source.add_sink(self)


# -- crash recovery ----------------------------------------------------------------


def remux(src: Path, dst: Path, container_format: str) -> int:
    """Stream-copy every readable packet of ``src`` into a fresh ``dst``; returns packets.

    A crash-truncated tail raises inside demux; everything before it is kept.
    """
    packets = 0
    with av.open(str(src)) as inp:
        in_stream = inp.streams[0]
        with av.open(str(dst), mode="w", format=container_format) as out:
            out_stream = out.add_stream_from_template(in_stream)
            try:
                for packet in inp.demux(in_stream):
                    if packet.dts is None or packet.size == 0:
                        continue
                    packet.stream = out_stream
                    out.mux(packet)
                    packets += 1
            except av.FFmpegError as exc:
                logger.warning("%s: stopped at damaged tail after %d packets: %s", src, packets, exc)
    return packets


def recover_unclosed(directory: Path) -> list[RecordedFile]:
    """Finalise the files a crashed run left open in ``directory``.

    Each ``*.partial.json`` sidecar names a file that was never closed.  It is
    remuxed by stream copy (in place, via a temporary file) so it gets a
    duration and cues, the sidecar is removed, and it is returned with
    ``closed_cleanly=False, recovered=True``.  Files with no readable frame
    are logged and left as they are.
    """
    recovered: list[RecordedFile] = []
    for sidecar in sorted(Path(directory).glob("*" + PARTIAL_SUFFIX)):
        try:
            meta = json.loads(sidecar.read_text())
            path = sidecar.with_name(str(meta["file"]))
            _codec, container_format, _ext = container_for(str(meta["codec"]))
        except (OSError, ValueError, KeyError, RecordingError) as exc:
            logger.error("unreadable recording sidecar %s: %s", sidecar, exc)
            continue
        if not path.exists() or path.stat().st_size == 0:
            logger.warning("%s: nothing was written before the crash", path)
            sidecar.unlink()
            continue
        tmp = path.with_name(path.name + ".recovering" + path.suffix)
        try:
            packets = remux(path, tmp, container_format)
        except (av.FFmpegError, OSError) as exc:
            logger.error("%s: cannot be recovered: %s", path, exc)
            tmp.unlink(missing_ok=True)
            continue
        if packets == 0:
            logger.error("%s: no readable frame to recover", path)
            tmp.unlink(missing_ok=True)
            continue
        os.replace(tmp, path)
        sidecar.unlink()
        found = probe(path)
        recovered.append(
            RecordedFile(
                path=path,
                codec=str(meta["codec"]),
                kind=str(meta["kind"]),
                duration_s=found.duration_s,
                size=path.stat().st_size,
                sha256=sha256_file(path),
                frames=found.frames,
                closed_cleanly=False,
                recovered=True,
                start_s=found.start_s,
                participant=str(meta.get("participant", "")),
                track_id=str(meta.get("track_id", "")),
            )
        )
        logger.info("recovered %s: %d frames, %.2f s", path, found.frames, found.duration_s)
    return recovered


def write_manifest(
    path: Path, files: Sequence[RecordedFile] | Iterable[RecordedFile], *, room: str = ""
) -> Path:
    """Write the session's recording manifest (JSON) atomically; returns ``path``.

    Every file with codec, kind, duration, size, SHA-256, frame count and
    whether it closed cleanly or was recovered; paths relative to the
    manifest's directory when inside it.
    """
    path = Path(path)
    base = path.parent
    document = {
        "version": 1,
        "room": room,
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "files": [f.to_json(relative_to=base) for f in files],
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False))
    os.replace(tmp, path)
    return path
