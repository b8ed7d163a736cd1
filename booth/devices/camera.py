"""Document cameras (高拍仪): a full-resolution still, never a frame of the compressed stream."""

from __future__ import annotations

import io
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Still:
    """One captured image, JPEG-encoded, with its pixel size."""

    data: bytes
    content_type: str
    width: int
    height: int


def _jpeg(image: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


class DocumentCamera(ABC):
    @abstractmethod
    def status(self) -> str:
        """Device state: ok or missing."""

    @abstractmethod
    def capture(self) -> Still:
        """Take one still at the camera's full resolution."""


class SyntheticCamera(DocumentCamera):
    """A test card of a fixed size (A4-ish proportions by default)."""

    def __init__(self, width: int = 2480, height: int = 1754) -> None:
        self.width, self.height = width, height
        self.count = 0

    def status(self) -> str:
        return "ok"

    def capture(self) -> Still:
        self.count += 1
        image = Image.new("RGB", (self.width, self.height), (246, 244, 236))
        draw = ImageDraw.Draw(image)
        step = max(8, self.width // 24)
        for x in range(0, self.width, step):
            draw.line([(x, 0), (x, self.height)], fill=(210, 214, 220), width=1)
        for y in range(0, self.height, step):
            draw.line([(0, y), (self.width, y)], fill=(210, 214, 220), width=1)
        draw.rectangle([step, step, self.width - step, self.height - step], outline=(30, 60, 120), width=6)
        draw.text((step * 2, step * 2), f"cloudseat synthetic document #{self.count}", fill=(20, 20, 20))
        return Still(_jpeg(image), "image/jpeg", self.width, self.height)


class V4L2Camera(DocumentCamera):
    """A Video4Linux device opened with PyAV at its largest advertised size (or `video_size`)."""

    def __init__(self, path: str, *, video_size: str | None = None, input_format: str | None = None,
                 warmup_frames: int = 5) -> None:
        self.path = path
        self.video_size = video_size
        self.input_format = input_format
        self.warmup_frames = warmup_frames

    def status(self) -> str:
        return "ok" if Path(self.path).exists() else "missing"

    def capture(self) -> Still:
        import av  # only a booth with a real camera needs PyAV's device input

        options: dict[str, str] = {}
        if self.video_size:
            options["video_size"] = self.video_size
        if self.input_format:
            options["input_format"] = self.input_format
        container = av.open(self.path, format="v4l2", options=options)
        try:
            frame = None
            for index, decoded in enumerate(container.decode(video=0)):
                frame = decoded
                if index >= self.warmup_frames:  # auto exposure settles over the first frames
                    break
            if frame is None:
                raise RuntimeError(f"{self.path} gave no frame")
            image = frame.to_image()
        finally:
            container.close()
        return Still(_jpeg(image), "image/jpeg", image.width, image.height)
