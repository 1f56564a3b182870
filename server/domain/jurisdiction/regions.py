"""Where a number presumably rings: country, US state/territory, time zones.

US state statutes presume the callee is in the state of the number's area
code (Florida's and Oklahoma's say so outright), so the state comes from the
area code through ``phonenumbers``' offline geocoder, which answers with a
state name ("Florida", "Washington State") or a place ("Los Angeles, CA").

* NANP numbers outside the US (Canada, the Caribbean) are their own country.
* US territories (PR, GU, VI, AS, MP) are US for federal rules, with the
  territory as their subdivision.
* Toll-free and other non-geographic US numbers have no state: federal rules
  only, and the batch time zone stands in (as in ``calling_window``).

Time zones come from :func:`server.domain.calling_window.zones_for_number`.
Results are cached per number (``lru_cache``): the dialer asks per contact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import geocoder

__all__ = ["US_STATE_NAMES", "US_TERRITORIES", "Region", "resolve_region"]

US_STATE_NAMES: dict[str, str] = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA",
    "colorado": "CO", "connecticut": "CT", "delaware": "DE", "florida": "FL", "georgia": "GA",
    "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS",
    "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD", "massachusetts": "MA",
    "michigan": "MI", "minnesota": "MN", "mississippi": "MS", "missouri": "MO", "montana": "MT",
    "nebraska": "NE", "nevada": "NV", "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM",
    "new york": "NY", "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
    "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC",
    "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT",
    "virginia": "VA", "washington": "WA", "washington state": "WA", "west virginia": "WV",
    "wisconsin": "WI", "wyoming": "WY",
    "district of columbia": "DC", "washington d.c.": "DC", "washington, d.c.": "DC", "washington dc": "DC",
    "puerto rico": "PR", "guam": "GU", "u.s. virgin islands": "VI", "us virgin islands": "VI",
    "american samoa": "AS", "northern mariana islands": "MP",
}
#: phonenumbers region codes that are US territories (federal rules apply).
US_TERRITORIES = frozenset({"PR", "GU", "VI", "AS", "MP"})
_CODES = frozenset(US_STATE_NAMES.values())
_CITY_STATE = re.compile(r",\s*([A-Z]{2})\s*$")


@dataclass(frozen=True)
class Region:
    """The presumed location of a number.

    ``country`` is an ISO 3166-1 code ("US", "CA", "JM"...), "" when the
    number cannot be parsed. ``state`` is the US state/territory code
    ("FL", "PR") or "" (not US, toll-free, or area code without a state).
    """

    country: str
    state: str

    @property
    def jurisdictions(self) -> tuple[str, ...]:
        """Table jurisdiction codes that apply: ``("US", "US-FL")``, ``("CA",)``."""
        if not self.country:
            return ()
        if self.state:
            return (self.country, f"{self.country}-{self.state}")
        return (self.country,)


@lru_cache(maxsize=65536)
def resolve_region(e164: str) -> Region:
    """Country and US state presumed from the number (area code for NANP)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return Region("", "")
    region = phonenumbers.region_code_for_number(number) or ""
    if region in US_TERRITORIES:
        return Region("US", region)
    if region != "US":
        return Region(region, "")
    return Region("US", state_from_description(geocoder.description_for_number(number, "en")))


def state_from_description(description: str) -> str:
    """Map a geocoder description to a 2-letter US state/territory code, or ""."""
    text = (description or "").strip()
    if not text:
        return ""
    m = _CITY_STATE.search(text)
    if m and m.group(1) in _CODES:
        return m.group(1)
    return US_STATE_NAMES.get(text.lower(), "")
