"""Call cost rules (pure, no I/O).

Pricing model of the seed ("Cost Estimation"): every connected minute costs
the sum of four per-minute components, by default

    base $0.05 + LLM $0.015 + STT $0.003 + TTS $0.005 = $0.073 / minute.

Money is carried as integer **micro-dollars** (1 USD = 1,000,000 micros), so
sums over many calls are exact and fit a BIGINT column / int64 proto field.

Rounding rules (one place, applied the same way everywhere):

* ``call_cost_micros`` bills the connected time per second, pro rata: a call
  of ``s`` seconds costs ``s * per_minute / 60``. Fractional seconds count
  pro rata too (there is no rounding up to the next second or minute). The
  result is rounded **half up to the micro**. The cost of a batch is the sum
  of the (rounded) costs of its attempts.
* ``estimate_cost_micros`` (the pre-creation estimate) is
  ``contacts * minutes_per_call * per_minute``, rounded half up to the micro.
* ``format_usd`` rounds half up for display only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = [
    "ASSUMED_MINUTES_PER_CALL",
    "MICROS_PER_USD",
    "PriceTable",
    "call_cost_micros",
    "estimate_cost_micros",
    "format_usd",
]

MICROS_PER_USD = 1_000_000
_MICROS = Decimal(MICROS_PER_USD)

#: The seed's calculator assumes an average call of three minutes.
ASSUMED_MINUTES_PER_CALL = Decimal(3)

# A price above this per component is certainly a typo (e.g. cents for dollars).
_MAX_COMPONENT_PER_MINUTE = Decimal(100)


def _round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class PriceTable:
    """USD per connected minute, by component (the seed's pricing model)."""

    base: Decimal = Decimal("0.05")
    llm: Decimal = Decimal("0.015")
    stt: Decimal = Decimal("0.003")
    tts: Decimal = Decimal("0.005")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, Decimal):
                # Accept ints / strings for convenience; floats go through str
                # so 0.015 stays 0.015 and not 0.01499999...
                try:
                    value = Decimal(str(value))
                except InvalidOperation as exc:
                    raise ValueError(f"price {f.name!r} is not a number: {value!r}") from exc
                object.__setattr__(self, f.name, value)
            if not value.is_finite() or value < 0:
                raise ValueError(f"price {f.name!r} must be a finite number >= 0, got {value}")
            if value > _MAX_COMPONENT_PER_MINUTE:
                raise ValueError(
                    f"price {f.name!r} = {value} USD/minute is implausibly high "
                    f"(max {_MAX_COMPONENT_PER_MINUTE})"
                )

    @property
    def per_minute(self) -> Decimal:
        """Total USD per minute (0.073 with the defaults)."""
        return self.base + self.llm + self.stt + self.tts

    @property
    def per_minute_micros(self) -> int:
        """Total micros per minute (73000 with the defaults), rounded half up."""
        return _round_half_up(self.per_minute * _MICROS)

    @classmethod
    def from_env_string(cls, s: str) -> "PriceTable":
        """Parse ``"base=0.05,llm=0.015,stt=0.003,tts=0.005"``.

        Whitespace around items is ignored; components left out keep their
        default; an empty (or blank) string gives the defaults. Unknown or
        repeated keys, missing ``=``, non-numeric, negative or non-finite
        values raise ``ValueError`` naming the offending item.
        """
        known = {f.name for f in fields(cls)}
        values: dict[str, Decimal] = {}
        for raw_item in s.split(","):
            item = raw_item.strip()
            if not item:
                if s.strip():
                    raise ValueError(f"empty item in price table {s!r}")
                continue
            key, sep, raw_value = item.partition("=")
            key = key.strip().lower()
            raw_value = raw_value.strip()
            if not sep:
                raise ValueError(f"price item {item!r} is not of the form name=value")
            if key not in known:
                raise ValueError(
                    f"unknown price component {key!r} (expected one of {', '.join(sorted(known))})"
                )
            if key in values:
                raise ValueError(f"price component {key!r} given twice")
            try:
                value = Decimal(raw_value)
            except InvalidOperation as exc:
                raise ValueError(f"price {key!r} is not a number: {raw_value!r}") from exc
            if not value.is_finite() or value < 0:
                raise ValueError(f"price {key!r} must be a finite number >= 0, got {raw_value!r}")
            values[key] = value
        return cls(**values)

    def to_env_string(self) -> str:
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


def estimate_cost_micros(
    contacts: int,
    prices: PriceTable,
    minutes_per_call: Decimal = ASSUMED_MINUTES_PER_CALL,
) -> int:
    """Pre-creation estimate: ``contacts x minutes_per_call x per_minute``.

    With the defaults, 1,000 contacts -> 1000 x 3 x $0.073 = $219.00
    (219_000_000 micros). Retries are not included (the seed's calculator
    does not count them). Rounded half up to the micro.
    """
    if contacts < 0:
        raise ValueError(f"contacts must be >= 0, got {contacts}")
    minutes = minutes_per_call if isinstance(minutes_per_call, Decimal) else Decimal(str(minutes_per_call))
    if not minutes.is_finite() or minutes < 0:
        raise ValueError(f"minutes_per_call must be a finite number >= 0, got {minutes_per_call}")
    return _round_half_up(Decimal(contacts) * minutes * prices.per_minute * _MICROS)


def call_cost_micros(duration_seconds: float, prices: PriceTable) -> int:
    """Cost of one call from its **connected** seconds, billed per second.

    ``duration_seconds * per_minute / 60``, fractional seconds pro rata,
    rounded half up to the micro. A call that never connected (0 s) costs 0.
    With the defaults one second costs 1216.67 -> 1217 micros and a minute
    exactly 73,000 micros.
    """
    if isinstance(duration_seconds, float) and not math.isfinite(duration_seconds):
        raise ValueError(f"duration_seconds must be finite, got {duration_seconds}")
    if duration_seconds < 0:
        raise ValueError(f"duration_seconds must be >= 0, got {duration_seconds}")
    seconds = Decimal(str(duration_seconds))
    return _round_half_up(seconds * prices.per_minute * _MICROS / 60)


_CENT_MICROS = MICROS_PER_USD // 100


def format_usd(micros: int) -> str:
    """Human form of a micro-dollar amount.

    ``$12.34`` with two decimals and thousands separators (``$1,234.56``);
    a non-zero amount below one cent shows four decimals (``$0.0012``) so
    that a single short call does not read as ``$0.00``. Rounded half up.
    Negative amounts (refunds, corrections) get a leading minus: ``-$1.50``.
    """
    sign = "-" if micros < 0 else ""
    amount = Decimal(abs(int(micros))) / _MICROS
    if 0 < abs(micros) < _CENT_MICROS:
        text = f"{amount.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP):f}"
    else:
        text = f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,f}"
    return f"{sign}${text}"
