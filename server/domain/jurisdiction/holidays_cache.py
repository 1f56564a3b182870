"""Holiday dates from the maintained ``holidays`` package, cached per year.

Decision: a "holiday" for a state's holiday ban is a date that
``holidays.country_holidays("US", subdiv=STATE, years=Y, categories=...)``
lists in its ``public`` or ``government`` category for that subdivision (the
union, as the safe side; ``unofficial`` — Halloween, Valentine's Day — is
not used). That includes the
federal holidays observed there, the state's own legal holidays, and the
observed-on-Friday/Monday days the package adds when a holiday falls on a
weekend. Statutes name "legal holidays" by reference to their state's
holiday law, which is what the package encodes; where a regulator names a
shorter list (Louisiana's PSC), the package's longer list errs on the safe
side. Known gap: for Pennsylvania the package lists neither Flag Day,
Election Day nor Good Friday in these categories (Good Friday only as
"unofficial"), while secondary sources say the PA ban covers them; see
docs/compliance.md. A country-level holiday rule (none in the table today) would use the
country's national list (``subdiv=None``).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays as _holidays

__all__ = ["holiday_dates", "holiday_name", "is_holiday"]

_CATEGORIES = ("public", "government")


@lru_cache(maxsize=1024)
def holiday_dates(country: str, subdiv: str, year: int) -> dict[date, str]:
    """Holiday date → name for one country/subdivision/year ("" subdiv = national)."""
    try:
        cls = _holidays.country_holidays(country, subdiv=subdiv or None, years=year).__class__
        cats = tuple(c for c in _CATEGORIES if c in getattr(cls, "supported_categories", (_holidays.PUBLIC,)))
        h = _holidays.country_holidays(country, subdiv=subdiv or None, years=year, categories=cats)
    except NotImplementedError:  # country/subdivision not covered by the package
        return {}
    return dict(h.items())


def is_holiday(country: str, subdiv: str, day: date) -> bool:
    return day in holiday_dates(country, subdiv, day.year)


def holiday_name(country: str, subdiv: str, day: date) -> str:
    return holiday_dates(country, subdiv, day.year).get(day, "")
