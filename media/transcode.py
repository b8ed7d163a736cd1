"""The transcoding fallback: decode a publisher's frames for a subscriber whose
negotiated codec differs (e.g. an H.264-only publisher and a VP8-only viewer).

Passthrough needs both legs to share a codec.  When they do not, the hub
attaches the subscriber's track with a converter from `frame_decoder` and the
aiortc sender encodes the decoded frames into the subscriber's codec -- the
costly path aiortc's MediaRelay always takes, so the hub reports every use
through its `on_fallback_transcode` callback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import av
from av.frame import Frame

logger = logging.getLogger(__name__)

# FFmpeg decoder per RTP codec name; aiortc itself decodes VP8 with libvpx.
_DECODERS = {"VP8": "libvpx", "H264": "h264", "OPUS": "libopus", "PCMU": "pcm_mulaw", "PCMA": "pcm_alaw"}


def decoder_name(codec: str) -> str:
    """The FFmpeg decoder for an RTP codec name; ValueError when there is none."""
    try:
        return _DECODERS[codec.upper()]
    except KeyError:
        raise ValueError(f"no decoder for codec {codec!r}") from None


def frame_decoder(codec: str) -> Callable[[av.Packet[Any]], list[Frame]]:
    """A converter that decodes packets of ``codec`` into frames with the packet's pts.

    The converter runs in an executor thread; a lock keeps one decode at a
    time because a codec context is not thread-safe.
    """
    context = av.CodecContext.create(decoder_name(codec), "r")
    lock = threading.Lock()

    def convert(packet: av.Packet[Any]) -> list[Frame]:
        with lock:
            try:
                frames = list(context.decode(packet))  # type: ignore[attr-defined]  # a decoder context
            except av.FFmpegError as exc:
                logger.warning("transcode: %s decode failed: %s", codec, exc)
                return []
        for frame in frames:
            frame.pts = packet.pts
            frame.time_base = packet.time_base
        return frames

    return convert
