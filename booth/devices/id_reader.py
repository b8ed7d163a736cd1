"""ID card readers (身份证阅读器); only a simulated one until a real SDK is wired in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class IdCard:
    """What a reader returns; the number is shown masked everywhere (`masked_number`)."""

    name: str
    number: str

    @property
    def masked_number(self) -> str:
        return self.number[:3] + "*" * max(0, len(self.number) - 7) + self.number[-4:]


class IdReader(ABC):
    @abstractmethod
    def status(self) -> str:
        """Device state: ok or missing."""

    @abstractmethod
    def read(self) -> IdCard | None:
        """The card on the reader, or None."""


class SimulatedIdReader(IdReader):
    """Returns the card it was given (none by default)."""

    def __init__(self, card: IdCard | None = None) -> None:
        self.card = card

    def status(self) -> str:
        return "ok"

    def read(self) -> IdCard | None:
        return self.card
