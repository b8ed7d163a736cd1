"""Synthetic media for the booth/seat simulators, benchmarks and tests.

Every video frame carries a machine-readable code burnt into its top rows:
a 32-bit frame counter, the 48-bit wall clock in milliseconds when the frame
was made, and a CRC-8, as black/white blocks aligned to VP8's 16x16
macroblocks.  After any number of encode/forward/decode hops (or in a
recording) `read_burnt_in` recovers them, so a test can check order (counter
strictly increasing), loss (counter gaps) and latency or alignment (clock)
without trusting anything but the pixels.

Built on Pillow (a project dependency) rather than numpy, which the project
does not install.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import logging
import math
import random
import threading
import time
from typing import Any

import av
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from PIL import Image, ImageDraw

from media import _aiortc_internals as internals

logger = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
AUDIO_SAMPLE_RATE = 48000
AUDIO_PTIME = 0.020

COUNTER_BITS = 32
CLOCK_BITS = 48
CHECK_BITS = 8
CODE_BITS = COUNTER_BITS + CLOCK_BITS + CHECK_BITS
CODE_COLUMNS = 40  # blocks per row: 16 px blocks at 640 px wide
_BLACK, _WHITE = 16, 235  # video-range luma


# -- the burnt-in code -------------------------------------------------------------


def crc8(data: bytes) -> int:
    """CRC-8 (polynomial 0x07), to reject a misread code instead of trusting it."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def code_block_size(width: int) -> int:
    """Side of one code block: a multiple of 16 (a VP8 macroblock), ~1/40 of the width."""
    return max(16, (width // CODE_COLUMNS) // 16 * 16)


def code_layout(width: int) -> tuple[int, int, int]:
    """(block size, blocks per row, rows) of the code for a frame ``width`` wide."""
    block = code_block_size(width)
    columns = width // block
    rows = math.ceil(CODE_BITS / columns)
    return block, columns, rows


def code_height(width: int) -> int:
    """Pixel rows the code occupies at the top of a frame ``width`` wide."""
    block, _columns, rows = code_layout(width)
    return block * rows


def encode_code_bits(counter: int, clock_ms: int) -> list[int]:
    """The code's bits, most significant first: counter, clock, CRC-8."""
    counter &= (1 << COUNTER_BITS) - 1
    clock_ms &= (1 << CLOCK_BITS) - 1
    payload = counter.to_bytes(4, "big") + clock_ms.to_bytes(6, "big")
    value = int.from_bytes(payload + bytes([crc8(payload)]), "big")
    return [(value >> (CODE_BITS - 1 - i)) & 1 for i in range(CODE_BITS)]


def decode_code_bits(bits: list[int]) -> tuple[int, int]:
    """(counter, clock_ms) from the code's bits; ValueError if the CRC fails."""
    if len(bits) != CODE_BITS:
        raise ValueError(f"expected {CODE_BITS} bits, got {len(bits)}")
    value = 0
    for bit in bits:
        value = (value << 1) | bit
    raw = value.to_bytes(CODE_BITS // 8, "big")
    if crc8(raw[:10]) != raw[10]:
        raise ValueError("burnt-in code checksum mismatch")
    return int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:10], "big")


def draw_code(image: Image.Image, counter: int, clock_ms: int) -> None:
    """Burn the code into the top rows of a luma ("L") image."""
    block, columns, _rows = code_layout(image.width)
    draw = ImageDraw.Draw(image)
    for i, bit in enumerate(encode_code_bits(counter, clock_ms)):
        x, y = (i % columns) * block, (i // columns) * block
        draw.rectangle((x, y, x + block - 1, y + block - 1), fill=_WHITE if bit else _BLACK)


def read_burnt_in(frame: av.VideoFrame) -> tuple[int, int]:
    """(counter, clock_ms) burnt into a decoded frame; ValueError if unreadable.

    Samples a 3x3 grid in the middle half of each block of the luma plane and
    thresholds its mean, which survives VP8 quantisation at 640x480 easily.
    """
    plane = frame.planes[0]
    line = plane.line_size
    data = bytes(plane)
    block, columns, _rows = code_layout(frame.width)
    offsets = (block // 4, block // 2, 3 * block // 4)
    bits = []
    for i in range(CODE_BITS):
        x0, y0 = (i % columns) * block, (i // columns) * block
        total = sum(data[(y0 + dy) * line + x0 + dx] for dy in offsets for dx in offsets)
        bits.append(1 if total > 9 * (_BLACK + _WHITE) // 2 else 0)
    return decode_code_bits(bits)


def frame_from_luma(image: Image.Image, chroma: tuple[int, int] = (128, 128)) -> av.VideoFrame:
    """A yuv420p frame whose luma is ``image`` and whose chroma is flat."""
    width, height = image.size
    frame = av.VideoFrame(width, height, "yuv420p")
    _fill_plane(frame.planes[0], image.tobytes(), width, height)
    for plane, value in zip(frame.planes[1:], chroma):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


def _fill_plane(plane: av.video.plane.VideoPlane, data: bytes, width: int, height: int) -> None:
    if plane.line_size == width:
        plane.update(data)
        return
    pad = bytes(plane.line_size - width)
    plane.update(b"".join(data[r * width : (r + 1) * width] + pad for r in range(height)))


# -- pictures ----------------------------------------------------------------------


class TestPattern:
    """A moving luma pattern: scrolling stripes, a bouncing square, a noise patch.

    Motion and noise keep the encoder honest (real inter-frame work, real
    bit-rate) while the code rows stay clean.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, width: int = 640, height: int = 480) -> None:
        self.width, self.height = width, height
        row = bytes(
            int(128 + 90 * math.sin(2 * math.pi * x / 97) * math.cos(2 * math.pi * x / 331))
            for x in range(2 * width)
        )
        stripes = Image.frombytes("L", (2 * width, 1), row).resize((2 * width, height))
        shade = Image.linear_gradient("L").resize((2 * width, height))
        self._texture = Image.blend(stripes, shade, 0.35)
        self._side = max(16, height // 6)

    def render(self, index: int, clock_ms: int) -> Image.Image:
        offset = (index * 4) % self.width
        image = self._texture.crop((offset, 0, offset + self.width, self.height))
        draw = ImageDraw.Draw(image)
        top = code_height(self.width) + 8
        span_y = max(1, self.height - top - self._side)
        x = (index * 9) % max(1, self.width - self._side)
        y = top + int((math.sin(index / 10.0) + 1) / 2 * span_y)
        draw.rectangle((x, y, x + self._side, y + self._side), fill=_WHITE)
        noise_w, noise_h = self.width // 4, self.height // 4
        noise = Image.frombytes("L", (noise_w, noise_h), random.Random(index).randbytes(noise_w * noise_h))
        image.paste(noise, (self.width - noise_w - 8, self.height - noise_h - 8))
        draw_code(image, index, clock_ms)
        return image


class SampleForm:
    """A rendered sample application form (lines, boxes, a photo frame) on white paper."""

    def __init__(self, width: int = 1920, height: int = 1080) -> None:
        self.width, self.height = width, height
        page = Image.new("L", (width, height), 225)
        draw = ImageDraw.Draw(page)
        top = code_height(width) + height // 20
        margin = width // 12
        unit = max(2, width // 640)
        draw.rectangle((margin, top, width - margin, height - margin // 2), outline=30, width=2 * unit)
        draw.rectangle((margin, top, width - margin, top + height // 10), fill=60)
        draw.text((margin + 20 * unit, top + 10 * unit), "APPLICATION FORM / SAMPLE", fill=235)
        line_y = top + height // 10 + 30 * unit
        while line_y < height - margin:
            draw.line((margin + 20 * unit, line_y, width - margin - width // 4, line_y), fill=40, width=unit)
            box = (width - margin - width // 5, line_y - 14 * unit, width - margin - width // 5 + 14 * unit, line_y)
            draw.rectangle(box, outline=30, width=unit)
            line_y += 36 * unit
        photo = (width - margin - width // 6, top + height // 10 + 20 * unit, width - margin - 20 * unit, top + height // 10 + 20 * unit + height // 4)
        draw.rectangle(photo, outline=20, width=2 * unit)
        self._page = page

    def render(self, index: int, clock_ms: int) -> Image.Image:
        image = self._page.copy()
        # a small moving pen mark, so consecutive frames differ a little
        draw = ImageDraw.Draw(image)
        x = self.width // 12 + (index * 37) % (self.width // 2)
        y = self.height - self.height // 6
        draw.ellipse((x, y, x + 24, y + 24), fill=20)
        draw_code(image, index, clock_ms)
        return image


# -- tracks ------------------------------------------------------------------------


class _PacedTrack(MediaStreamTrack):
    """Releases one item every ``1/rate`` seconds of wall clock, starting at first recv."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.count = 0
        self._start: float | None = None

    async def _next_slot(self) -> int:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            wait = self._start + self.count / self.rate - now
            if wait > 0:
                await asyncio.sleep(wait)
        index = self.count
        self.count += 1
        return index


class CameraTrack(_PacedTrack):
    """A face camera: the moving test pattern with the burnt-in code (640x480, 15 fps)."""

    kind = "video"

    def __init__(self, width: int = 640, height: int = 480, fps: float = 15.0) -> None:
        super().__init__(fps)
        self.picture: TestPattern | SampleForm = TestPattern(width, height)

    async def recv(self) -> av.VideoFrame:
        index = await self._next_slot()
        image = self.picture.render(index, int(time.time() * 1000))
        frame = frame_from_luma(image, chroma=(110, 140))
        frame.pts = round(index * VIDEO_CLOCK_RATE / self.rate)
        frame.time_base = VIDEO_TIME_BASE
        return frame


class DocumentCameraTrack(CameraTrack):
    """A document camera: a sample form at high resolution and a low frame rate.

    Defaults to 1920x1080 at 3 fps; the same burnt-in code as `CameraTrack`.
    """

    def __init__(self, width: int = 1920, height: int = 1080, fps: float = 3.0) -> None:
        super().__init__(width, height, fps)
        self.picture = SampleForm(width, height)


def _tone_table(frequency: float, sample_rate: int, amplitude: int) -> array.array[int]:
    return array.array(
        "h", (int(amplitude * math.sin(2 * math.pi * frequency * i / sample_rate)) for i in range(sample_rate))
    )


class ToneTrack(_PacedTrack):
    """A sine tone, 48 kHz mono s16 in 20 ms frames."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, amplitude: int = 6000) -> None:
        super().__init__(1 / AUDIO_PTIME)
        self.samples_per_frame = int(AUDIO_SAMPLE_RATE * AUDIO_PTIME)
        # one second of tone; an integer frequency makes it loop seamlessly
        self._table = _tone_table(frequency, AUDIO_SAMPLE_RATE, amplitude)

    async def recv(self) -> av.AudioFrame:
        index = await self._next_slot()
        start = (index * self.samples_per_frame) % AUDIO_SAMPLE_RATE
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.samples_per_frame)
        frame.planes[0].update(self._table[start : start + self.samples_per_frame].tobytes())
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.pts = index * self.samples_per_frame
        frame.time_base = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
        return frame


class PreEncodedVideoTrack(MediaStreamTrack):
    """A video track that encodes VP8 itself and hands aiortc ready `av.Packet`s.

    The sender then only packetises (as for forwarded media), so this is cheap
    load generation when one encoded stream is sent on many peers, and it makes
    keyframes deterministic: one at start and one per keyframe request from
    the far end (bind it with `bind_sender`), never because the bit-rate
    estimate moved -- which aiortc's own encoder does by restarting itself.
    """

    kind = "video"

    def __init__(self, frames: MediaStreamTrack, bitrate: int = 600_000) -> None:
        super().__init__()
        self._frames = frames
        self._bitrate = bitrate
        self._codec: av.video.codeccontext.VideoCodecContext | None = None
        self._force_keyframe = True
        self._lock = threading.Lock()
        self.keyframes = 0

    def bind_sender(self, sender: RTCRtpSender) -> None:
        """Honour PLI/FIR from the receiving side with a fresh keyframe."""
        internals.intercept_keyframe_requests(sender, self.request_keyframe)

    def request_keyframe(self) -> None:
        self._force_keyframe = True

    def _encode(self, frame: av.VideoFrame) -> list[av.Packet[Any]]:
        with self._lock:
            if self._codec is None:
                codec = av.CodecContext.create("libvpx", "w")
                codec.width, codec.height = frame.width, frame.height
                codec.pix_fmt = "yuv420p"
                codec.bit_rate = self._bitrate
                codec.time_base = VIDEO_TIME_BASE
                codec.gop_size = 1 << 30  # keyframes only on request
                codec.qmin, codec.qmax = 2, 56
                # FFmpeg's default (0 = "auto") makes libvpx ~20x slower here
                codec.thread_count = 1 if frame.width * frame.height <= 640 * 480 else 2
                # aiortc's own real-time VP8 settings (CBR, one partition): ~6 ms a 640x480 frame
                codec.options = {
                    "bufsize": str(self._bitrate),
                    "cpu-used": "-6",
                    "deadline": "realtime",
                    "lag-in-frames": "0",
                    "minrate": str(self._bitrate),
                    "maxrate": str(self._bitrate),
                    "noise-sensitivity": "4",
                    "overshoot-pct": "15",
                    "partitions": "0",
                    "static-thresh": "1",
                    "undershoot-pct": "100",
                }
                self._codec = codec
            if self._force_keyframe:
                self._force_keyframe = False
                frame.pict_type = av.video.frame.PictureType.I
            else:
                frame.pict_type = av.video.frame.PictureType.NONE
            return list(self._codec.encode(frame))

    async def recv(self) -> av.Packet[Any]:
        frame = await self._frames.recv()
        assert isinstance(frame, av.VideoFrame) and frame.time_base is not None
        pts, time_base = frame.pts, frame.time_base
        packets = await asyncio.get_running_loop().run_in_executor(None, self._encode, frame)
        data = b"".join(bytes(p) for p in packets)
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = time_base
        packet.is_keyframe = any(p.is_keyframe for p in packets)
        self.keyframes += packet.is_keyframe
        return packet

    def stop(self) -> None:
        super().stop()
        self._frames.stop()

