"""Stream-copy recorder: timestamps, file contents, manifest, recovery bookkeeping."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import pytest

from media.errors import RecordingError
from media.passthrough import EncodedFrame
from media.recorder import (
    PARTIAL_SUFFIX,
    RecordedFile,
    TrackRecorder,
    container_for,
    probe,
    recover_unclosed,
    write_manifest,
)
from media.synthetic import read_burnt_in
from tests.media_helpers import encode_opus, encode_video

SESSION_START = 1_700_000_000.0


@pytest.fixture(scope="module")
def vp8_frames() -> list[tuple[bytes, bool]]:
    return encode_video("VP8", count=60)


def video_frame(data: bytes, key: bool, index: int, offset_s: float, codec: str = "VP8") -> EncodedFrame:
    """Frame ``index`` of a 15 fps publisher that arrived ``offset_s`` after the session start."""
    return EncodedFrame(codec, "video", data, index * 6000, 90000, key, SESSION_START + offset_s)


def packet_times(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams[0]
        return [int(p.pts * stream.time_base * 1000) for p in container.demux(stream) if p.size]


def recorder(tmp_path: Path, codec: str = "VP8", kind: str = "video") -> TrackRecorder:
    return TrackRecorder(tmp_path / "booth-video0", kind=kind, codec=codec, session_start=SESSION_START, participant="booth")


def test_timestamps_follow_rtp_clock_from_session_start(tmp_path: Path, vp8_frames: list[tuple[bytes, bool]]) -> None:
    rec = recorder(tmp_path)
    for i, (data, key) in enumerate(vp8_frames[:30]):
        # arrival jitters by +-20 ms; the file must follow the RTP clock, not the jitter
        rec.on_frame(video_frame(data, key, i, 2.0 + i / 15 + (0.02 if i % 2 else -0.02)))
    result = rec.close()
    assert result is not None
    times = packet_times(result.path)
    assert times[0] == 1980  # first arrival, relative to the session start
    steps = {b - a for a, b in zip(times, times[1:])}
    assert steps <= {66, 67}
    assert result.start_s == pytest.approx(1.98)
    assert result.duration_s == pytest.approx(30 / 15, abs=0.01)


def test_gap_stays_a_gap_and_timestamps_stay_monotonic(tmp_path: Path, vp8_frames: list[tuple[bytes, bool]]) -> None:
    rec = recorder(tmp_path)
    frames = vp8_frames[:40]
    for i, (data, key) in enumerate(frames[:20]):
        rec.on_frame(video_frame(data, key, i, 1.0 + i / 15))
    # the publisher stalls 3 s (its clock runs on), then continues
    for i, (data, key) in enumerate(frames[20:], start=65):
        rec.on_frame(video_frame(data, key, i, 1.0 + i / 15))
    # then restarts: its RTP clock goes back to 0 while wall time moves on
    for i, (data, key) in enumerate(vp8_frames[40:50]):
        rec.on_frame(video_frame(data, key, i, 10.0 + i / 15))
    result = rec.close()
    assert result is not None
    times = packet_times(result.path)
    assert all(b > a for a, b in zip(times, times[1:]))
    assert times[20] - times[19] == pytest.approx(46 * 1000 / 15, abs=1)  # the 3 s gap is kept
    assert times[40] == 10000  # re-anchored on arrival after the restart
    assert result.frames == 50


def test_recording_starts_at_a_keyframe_and_plays(tmp_path: Path, vp8_frames: list[tuple[bytes, bool]]) -> None:
    rec = recorder(tmp_path)
    rec.on_frame(video_frame(vp8_frames[1][0], False, 0, 0.5))  # joined mid-stream: skipped
    assert not rec.path.exists()
    for i, (data, key) in enumerate(vp8_frames):
        rec.on_frame(video_frame(data, key, i + 1, 0.6 + i / 15))
    assert rec.sidecar.exists()  # written at open, for recover_unclosed
    result = rec.close()
    assert result is not None and result.closed_cleanly and not result.recovered
    assert not rec.sidecar.exists()
    assert result.path.suffix == ".webm" and result.frames == 60
    assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert result.size == result.path.stat().st_size
    with av.open(str(result.path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp8"
        assert container.duration is not None  # closed cleanly: duration and cues written
        decoded = list(container.decode(stream))
    assert len(decoded) == 60
    assert read_burnt_in(decoded[-1])[0] == 59  # bit-exact: the publisher's own pixels


def test_h264_goes_to_matroska(tmp_path: Path) -> None:
    rec = recorder(tmp_path, codec="H264")
    for i, (data, key) in enumerate(encode_video("H264", count=15)):
        rec.on_frame(video_frame(data, key, i, 1.0 + i / 15, codec="H264"))
    result = rec.close()
    assert result is not None and result.path.suffix == ".mkv"
    with av.open(str(result.path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.width) == ("h264", 640)
        assert len(list(container.decode(stream))) == 15


def test_opus_goes_to_webm_with_opus_head(tmp_path: Path) -> None:
    rec = TrackRecorder(tmp_path / "clerk-audio0", kind="audio", codec="opus", session_start=SESSION_START)
    for i, data in enumerate(encode_opus(100)):
        rec.on_frame(EncodedFrame("opus", "audio", data, i * 960, 48000, True, SESSION_START + 0.5 + i * 0.02))
    result = rec.close()
    assert result is not None
    assert result.duration_s == pytest.approx(2.0, abs=0.03)
    with av.open(str(result.path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.extradata[:8] == b"OpusHead"
        assert sum(f.samples for f in container.decode(stream)) >= 99 * 960


def test_closing_an_unused_recorder_gives_nothing(tmp_path: Path) -> None:
    assert recorder(tmp_path).close() is None
    assert list(tmp_path.iterdir()) == []


def test_unrecordable_codec_is_refused() -> None:
    with pytest.raises(RecordingError) as caught:
        container_for("PCMU")
    assert caught.value.code == "codec_not_recordable"


def test_recorded_file_validates_itself(tmp_path: Path) -> None:
    good = dict(path=tmp_path / "a.webm", codec="VP8", kind="video", duration_s=1.0, size=10, sha256="0" * 64, frames=15, closed_cleanly=True)
    RecordedFile(**good)  # type: ignore[arg-type]
    for bad in ({"kind": "data"}, {"sha256": "xyz"}, {"size": -1}):
        with pytest.raises(ValueError):
            RecordedFile(**{**good, **bad})  # type: ignore[arg-type]


def test_manifest_lists_every_file_with_its_facts(tmp_path: Path, vp8_frames: list[tuple[bytes, bool]]) -> None:
    rec = recorder(tmp_path)
    for i, (data, key) in enumerate(vp8_frames[:15]):
        rec.on_frame(video_frame(data, key, i, 1.0 + i / 15))
    clean = rec.close()
    assert clean is not None
    recovered = RecordedFile(
        path=tmp_path / "clerk-audio0.webm", codec="opus", kind="audio", duration_s=3.5, size=1234,
        sha256="a" * 64, frames=175, closed_cleanly=False, recovered=True, participant="clerk",
    )
    manifest = write_manifest(tmp_path / "manifest.json", [clean, recovered], room="call-42")
    document = json.loads(manifest.read_text())
    assert document["room"] == "call-42" and document["version"] == 1
    first, second = document["files"]
    assert first == {
        "path": "booth-video0.webm",  # relative to the manifest's directory
        "codec": "VP8",
        "kind": "video",
        "duration_s": clean.duration_s,
        "size": clean.path.stat().st_size,
        "sha256": hashlib.sha256(clean.path.read_bytes()).hexdigest(),
        "frames": 15,
        "closed_cleanly": True,
        "recovered": False,
        "start_s": 1.0,
        "participant": "booth",
        "track_id": "",
    }
    assert (second["recovered"], second["closed_cleanly"], second["sha256"]) == (True, False, "a" * 64)
    assert not (tmp_path / "manifest.json.tmp").exists()


def test_recover_unclosed_finishes_a_file_left_open(tmp_path: Path, vp8_frames: list[tuple[bytes, bool]]) -> None:
    rec = recorder(tmp_path)
    for i, (data, key) in enumerate(vp8_frames):
        rec.on_frame(video_frame(data, key, i, 1.0 + i / 15))
    # no close(): as after a crash (the muxer has flushed what it could)
    assert rec.sidecar.exists()
    (tmp_path / ("empty.webm" + PARTIAL_SUFFIX)).write_text(json.dumps({"file": "empty.webm", "codec": "VP8", "kind": "video"}))
    (tmp_path / "empty.webm").write_bytes(b"")
    found = recover_unclosed(tmp_path)
    assert [f.path.name for f in found] == ["booth-video0.webm"]
    result = found[0]
    assert result.recovered and not result.closed_cleanly
    assert result.frames >= 45  # at most the last cluster (~1 s) was still buffered
    assert result.start_s == pytest.approx(1.0)
    assert probe(result.path).frames == result.frames
    assert not list(tmp_path.glob("*" + PARTIAL_SUFFIX))
    assert recover_unclosed(tmp_path) == []  # idempotent


def test_anchor_uses_first_packet_arrival_not_release(tmp_path: Path, vp8_frames: list[tuple[bytes, bool]]) -> None:
    """A 3 fps document camera: frames are released 333 ms after their first packet."""
    rec = recorder(tmp_path)
    for i, (data, key) in enumerate(vp8_frames[:10]):
        arrived = 2.0 + i / 3
        frame = EncodedFrame("VP8", "video", data, i * 30000, 90000, key, SESSION_START + arrived + 1 / 3,
                             arrived_at=SESSION_START + arrived if i else None)
        rec.on_frame(frame)
    result = rec.close()
    assert result is not None
    assert packet_times(result.path)[:3] == [2000, 2333, 2667]


def test_a_late_start_gives_way_to_the_earlier_arrivals(tmp_path: Path, vp8_frames: list[tuple[bytes, bool]]) -> None:
    """The first frames reach the hub 250 ms late (a busy call start): the recording soon follows
    the frames that arrive on time, so tracks of one session stay aligned."""
    rec = recorder(tmp_path)
    for i, (data, key) in enumerate(vp8_frames[:45]):
        arrived = SESSION_START + 2.0 + i / 15 + (0.25 if i < 5 else 0.0)
        rec.on_frame(EncodedFrame("VP8", "video", data, i * 6000, 90000, key, arrived + 1 / 15, arrived_at=arrived))
    result = rec.close()
    assert result is not None
    times = packet_times(result.path)
    assert all(b > a for a, b in zip(times, times[1:]))
    assert times[0] == 2250  # anchored on the (late) first frames
    assert times[10:] == [round(2000 + i * 1000 / 15) for i in range(10, 45)]  # then on time again
