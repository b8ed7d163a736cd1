"""ID numbers (居民身份证号码): validation, the one masking rule, and the live-call vault.

Issue 7: an ID number is masked everywhere (pages, APIs, the event log) except where the
serving clerk needs it during a live call.  `mask_id_number` is the only place that decides
what a masked number looks like; every caller uses it.  The full number is never written to
the database or the log: it lives in an `IdCardVault` in the server's memory for the length
of the call, and is handed out only on an explicit, logged reveal.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date

from records.errors import ValidationError

# GB 11643-1999: 17 digits, then a check digit (0-9 or X) over ISO 7064 MOD 11-2.
_ID_RE = re.compile(r"[1-9]\d{16}[0-9X]")
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
_CHECK_CHARS = "10X98765432"
MAX_NAME = 30  # names with a middle dot (·) of the minority nationalities can be long
_NAME_BAD = re.compile(r"[\x00-\x1f\x7f<>]")


def mask_id_number(number: str) -> str:
    """The displayable form: the 6-digit region code and the last 4 kept, the rest `*`.

    `110105199001011234` -> `110105********1234`.  Shorter strings keep at most their last
    4 characters (and nothing when they are that short), so a typo is never shown whole.
    """
    value = number.strip()
    if len(value) >= 15:
        return value[:6] + "*" * (len(value) - 10) + value[-4:]
    if len(value) > 4:
        return "*" * (len(value) - 4) + value[-4:]
    return "*" * len(value)


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character of 17 digits."""
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise ValueError("the check digit is computed over exactly 17 digits")
    return _CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def validate_id_number(value: object) -> str:
    """The normalised number (upper-case X), or ValidationError.

    Codes: `id_number_invalid` (not 18 characters of the right shape, or an impossible
    birth date) and `id_number_checksum` (the last character does not match).  Messages
    carry the masked form only, because they may land in logs.
    """
    if not isinstance(value, str):
        raise ValidationError("id_number_invalid", "the ID number must be a string")
    number = value.strip().upper()
    if not _ID_RE.fullmatch(number):
        raise ValidationError("id_number_invalid",
                              f"an ID number is 17 digits and a check digit 0-9 or X (got {mask_id_number(number)!r})")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValidationError("id_number_invalid", f"{mask_id_number(number)} has no valid birth date") from None
    if born.year < 1880 or born > date.today():
        raise ValidationError("id_number_invalid", f"{mask_id_number(number)} has an impossible birth date")
    if id_check_digit(number[:17]) != number[17]:
        raise ValidationError("id_number_checksum", f"{mask_id_number(number)}: the check digit does not match")
    return number


def validate_id_name(value: object) -> str:
    """The cardholder's name as printed on the card: 1-30 characters, no markup or control characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("id_name_invalid", "the name on the card is required")
    name = value.strip()
    if len(name) > MAX_NAME or _NAME_BAD.search(name):
        raise ValidationError("id_name_invalid", f"the name must be 1-{MAX_NAME} characters without < > or controls")
    return name


# --------------------------------------------------------------------------- the live-call vault


@dataclass(frozen=True)
class LiveIdCard:
    """One card read during a live call; `number` is the full number (never logged)."""

    call_id: str
    name: str
    number: str = field(repr=False)
    material_id: int | None
    read_at: float = field(default_factory=time.monotonic)

    @property
    def masked(self) -> str:
        return mask_id_number(self.number)


class IdCardVault:
    """The full ID numbers of live calls, in memory only, forgotten when the call is over.

    Callers `forget` a call when they find it no longer live; entries older than `max_age_s`
    (longer than any call) are dropped on every write, so a call that ended without anyone
    asking is forgotten too.  Thread-safe: the records transactions run in a thread pool.
    """

    def __init__(self, *, max_age_s: float = 4 * 3600.0, max_entries: int = 10_000) -> None:
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._cards: dict[str, LiveIdCard] = {}
        self._lock = threading.Lock()

    def put(self, card: LiveIdCard) -> None:
        """Keep `card` as its call's card (a newer read replaces an older one)."""
        with self._lock:
            self._sweep(time.monotonic())
            self._cards[card.call_id] = card
            while len(self._cards) > self.max_entries:
                self._cards.pop(next(iter(self._cards)))

    def get(self, call_id: str) -> LiveIdCard | None:
        with self._lock:
            card = self._cards.get(call_id)
            if card is not None and time.monotonic() - card.read_at > self.max_age_s:
                del self._cards[call_id]
                return None
            return card

    def forget(self, call_id: str) -> None:
        with self._lock:
            self._cards.pop(call_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cards)

    def _sweep(self, now: float) -> None:
        for call_id in [c for c, card in self._cards.items() if now - card.read_at > self.max_age_s]:
            del self._cards[call_id]


def vault_of(state: object) -> IdCardVault:
    """The app's vault (`app.state.id_cards`), made on first use when the app did not make one."""
    vault = getattr(state, "id_cards", None)
    if not isinstance(vault, IdCardVault):
        vault = IdCardVault()
        setattr(state, "id_cards", vault)
    return vault
