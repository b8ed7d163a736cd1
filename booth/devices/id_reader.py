"""ID card readers (身份证阅读器); only a simulated one until a real SDK is wired in.

A reader gives the name, the number and the photo of the card lying on it.  The agent sends a
read to the server for the booth's live call as multipart (`id_card_form`), to the same
`POST /api/booth/materials` as a document still, with `kind=id_photo`.  The server checks the
number (GB 11643), masks it everywhere (records.privacy.mask_id_number) and keeps the full
number only for the serving clerk during the call.  Nothing here masks or logs a number: this
module never prints one (`IdCard`'s repr leaves it out).
"""

from __future__ import annotations

import io
import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

PHOTO_SIZE = (102, 126)  # the picture a second-generation card stores, in pixels


@dataclass(frozen=True)
class IdCard:
    """What a reader returns: name, number (kept out of repr, so out of logs) and the photo."""

    name: str
    number: str = field(repr=False)
    photo: bytes = field(default=b"", repr=False)
    photo_type: str = "image/jpeg"


def id_card_form(call_id: str, card: IdCard) -> tuple[dict[str, str], tuple[str, str, str, bytes]]:
    """The multipart fields and file of a read, for `POST /api/booth/materials`."""
    suffix = "png" if card.photo_type == "image/png" else "jpg"
    fields = {"call_id": call_id, "kind": "id_photo", "id_name": card.name, "id_number": card.number}
    return fields, ("file", f"id-photo.{suffix}", card.photo_type, card.photo)


def synthetic_photo(seed: int = 0) -> bytes:
    """A drawn head-and-shoulders portrait at the card photo's size (JPEG), for simulated cards."""
    image = Image.new("RGB", PHOTO_SIZE, (236, 240, 246))
    draw = ImageDraw.Draw(image)
    shade = (70 + seed * 37 % 60, 60, 50)
    draw.ellipse((29, 18, 73, 68), fill=(238, 205, 176), outline=(160, 120, 95))  # face
    draw.pieslice((27, 12, 75, 60), 180, 360, fill=shade)  # hair
    draw.rectangle((16, 88, 86, 126), fill=(40, 62, 98))  # shoulders
    draw.polygon([(41, 70), (61, 70), (66, 88), (36, 88)], fill=(238, 205, 176))  # neck
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def sample_card() -> IdCard:
    """The card a simulated reader offers: the example number printed in GB 11643 itself."""
    return IdCard(name="测试样例", number="11010519491231002X", photo=synthetic_photo(), photo_type="image/jpeg")


def load_card(source: str | Path) -> IdCard:
    """The card a simulated reader holds for a demo: `sample`, or a JSON file `{name, number, photo?}`.

    `photo` is the path of a JPEG or PNG (relative to the JSON file); without one the card gets a
    drawn portrait.  The number is not checked here: the server does (GB 11643), so a demo can
    also show how a bad card is refused.
    """
    if str(source) == "sample":
        return sample_card()
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("number"), str):
        raise ValueError(f'{path}: expected {{"name": "...", "number": "...", "photo": "optional.jpg"}}')
    photo, photo_type = synthetic_photo(), "image/jpeg"
    if data.get("photo"):
        photo_path = path.parent / str(data["photo"])
        try:
            photo = photo_path.read_bytes()
        except OSError as exc:
            raise ValueError(f"{photo_path}: {exc}") from None
        photo_type = "image/png" if photo.startswith(b"\x89PNG") else "image/jpeg"
    return IdCard(name=data["name"], number=data["number"], photo=photo, photo_type=photo_type)


class IdReader(ABC):
    @abstractmethod
    def status(self) -> str:
        """Device state: ok or missing."""

    @abstractmethod
    def read(self) -> IdCard | None:
        """The card on the reader, or None."""


class SimulatedIdReader(IdReader):
    """Returns the card it was given (none by default); `place` and `remove` move a card on and off."""

    def __init__(self, card: IdCard | None = None) -> None:
        self.card = card

    def status(self) -> str:
        return "ok"

    def read(self) -> IdCard | None:
        return self.card

    def place(self, card: IdCard | None = None) -> None:
        self.card = card or sample_card()

    def remove(self) -> None:
        self.card = None


class CardWatch:
    """Turns a reader that is polled into reads that happen once: a card counts when it is placed.

    `poll()` answers the card the first time it lies on the reader, then None until it is taken
    off (or another card is placed), so a card left on the reader is sent once per call.
    `reset()` at the start of a call lets the same card be read again for the new call.
    """

    def __init__(self, reader: IdReader) -> None:
        self.reader = reader
        self._seen: tuple[str, str] | None = None
        self._lock = threading.Lock()

    def poll(self) -> IdCard | None:
        card = self.reader.read()
        with self._lock:
            key = (card.name, card.number) if card is not None else None
            if key == self._seen:
                return None
            self._seen = key
            return card

    def reset(self) -> None:
        with self._lock:
            self._seen = None
