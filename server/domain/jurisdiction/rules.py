"""The versioned table of jurisdiction calling rules, as data.

One table, one version string. Every row names its jurisdiction, its kind,
its parameters, the public source it comes from, the date that source was
checked, whether the rule's *content* was verified against the statute or
regulation text itself (``verified``), and notes. ``docs/compliance.md``
renders the same table for people, with the rows that could not be verified.

Jurisdiction codes: ``"US"`` (federal, applies to every US state and
territory), ``"US-FL"`` style for a US state/territory (ISO 3166-2), or
another ISO 3166-1 country code (e.g. ``"CA"``) for rules of that country.

Kinds (:class:`RuleKind`):

* ``HOURS`` — calls only in ``[start, end)`` callee-local time on the ISO
  weekdays listed (1=Mon..7=Sun). A state may have several HOURS rows for
  different days (Texas: Mon–Sat 09:00–21:00, Sunday 12:00–21:00). On a given
  local date, every HOURS row whose weekdays include that date applies.
* ``NO_SUNDAY`` — no calls on the callee's local Sunday.
* ``NO_HOLIDAY`` — no calls on the jurisdiction's legal holidays, as the
  maintained ``holidays`` package lists them for that subdivision (see
  :mod:`server.domain.jurisdiction.holidays_cache`).
* ``SUBJECT_CAP`` — at most ``max_calls`` calls about the same subject per
  ``window_hours`` rolling hours. Not a time window: exposed through
  :func:`server.domain.jurisdiction.evaluation.subject_cap` for the caller that
  counts calls.

Decision: rows marked ``verified=False`` are still enforced. Every row can
only *narrow* when a call may be placed, so an unverified row that is wrong
costs calling hours, never legal exposure; dropping a row that turns out to
be right would. The explanation output carries the flag so an operator can
see which blocks rest on an unverified row.

Pure data: no imports beyond the standard library.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time

__all__ = ["CURRENT", "TABLE_VERSION", "JurisdictionRule", "RuleKind", "RuleTable"]

TABLE_VERSION = "2026-11-30"
_CHECKED = date(2026, 11, 30)
_ALL = frozenset(range(1, 8))
_MON_SAT = frozenset(range(1, 7))
_MON_FRI = frozenset(range(1, 6))


class RuleKind(str, enum.Enum):
    HOURS = "hours"
    NO_SUNDAY = "no_sunday"
    NO_HOLIDAY = "no_holiday"
    SUBJECT_CAP = "subject_cap"


@dataclass(frozen=True)
class JurisdictionRule:
    """One row of the table. Immutable and hashable."""

    rule_id: str
    jurisdiction: str
    kind: RuleKind
    source: str
    checked: date
    verified: bool
    notes: str = ""
    # HOURS parameters (callee-local wall clock, end exclusive).
    start: time | None = None
    end: time | None = None
    weekdays: frozenset[int] = field(default=_ALL)
    # SUBJECT_CAP parameters.
    max_calls: int | None = None
    window_hours: int | None = None

    def __post_init__(self) -> None:
        if self.kind is RuleKind.HOURS:
            if self.start is None or self.end is None or not self.start < self.end:
                raise ValueError(f"{self.rule_id}: HOURS rule needs start < end")
            if not self.weekdays or not set(self.weekdays) <= _ALL:
                raise ValueError(f"{self.rule_id}: weekdays must be ISO 1..7")
        if self.kind is RuleKind.SUBJECT_CAP and not (self.max_calls and self.window_hours):
            raise ValueError(f"{self.rule_id}: SUBJECT_CAP needs max_calls and window_hours")
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))

    @property
    def country(self) -> str:
        return self.jurisdiction.split("-", 1)[0]

    @property
    def subdivision(self) -> str:
        """``"FL"`` for ``"US-FL"``; ``""`` for a country-level row."""
        parts = self.jurisdiction.split("-", 1)
        return parts[1] if len(parts) == 2 else ""

    @property
    def description(self) -> str:
        """Human-readable one-liner, used by the explain output."""
        if self.kind is RuleKind.HOURS:
            days = "every day" if self.weekdays == _ALL else _days_text(self.weekdays)
            return f"{self.jurisdiction}: calls only {self.start:%H:%M}–{self.end:%H:%M} callee local time, {days}"
        if self.kind is RuleKind.NO_SUNDAY:
            return f"{self.jurisdiction}: no calls on Sunday"
        if self.kind is RuleKind.NO_HOLIDAY:
            return f"{self.jurisdiction}: no calls on state legal holidays"
        return f"{self.jurisdiction}: at most {self.max_calls} calls per {self.window_hours} h on the same subject"


_DAY_NAMES = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}


def _days_text(days: frozenset[int]) -> str:
    ds = sorted(days)
    if ds == list(range(ds[0], ds[-1] + 1)) and len(ds) > 2:
        return f"{_DAY_NAMES[ds[0]]}–{_DAY_NAMES[ds[-1]]}"
    return ",".join(_DAY_NAMES[d] for d in ds)


@dataclass(frozen=True)
class RuleTable:
    """A version string plus its rows. Hashable, so it can key caches."""

    version: str
    rules: tuple[JurisdictionRule, ...]

    def __post_init__(self) -> None:
        ids = [r.rule_id for r in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate rule ids: {dupes}")

    def for_jurisdictions(self, codes: tuple[str, ...]) -> tuple[JurisdictionRule, ...]:
        """Rows whose jurisdiction is one of ``codes``, in table order."""
        wanted = set(codes)
        return tuple(r for r in self.rules if r.jurisdiction in wanted)

    def by_id(self) -> Mapping[str, JurisdictionRule]:
        return {r.rule_id: r for r in self.rules}

    def replace_rule(self, rule_id: str, **changes: object) -> RuleTable:
        """A copy with one row changed (for tests and what-if explanations)."""
        from dataclasses import replace

        rows = tuple(replace(r, **changes) if r.rule_id == rule_id else r for r in self.rules)
        if rows == self.rules and rule_id not in self.by_id():
            raise KeyError(rule_id)
        return RuleTable(self.version, rows)


def _hours(rule_id, jur, start, end, source, verified, notes="", weekdays=_ALL):
    return JurisdictionRule(
        rule_id, jur, RuleKind.HOURS, source, _CHECKED, verified, notes,
        start=time(*start), end=time(*end), weekdays=weekdays,
    )


def _rule(rule_id, jur, kind, source, verified, notes=""):
    return JurisdictionRule(rule_id, jur, kind, source, _CHECKED, verified, notes)


def _cap(rule_id, jur, source, verified, notes=""):
    return JurisdictionRule(
        rule_id, jur, RuleKind.SUBJECT_CAP, source, _CHECKED, verified, notes, max_calls=3, window_hours=24
    )


# --------------------------------------------------------------------------
# The table. Keep docs/compliance.md in step with every change here and bump
# TABLE_VERSION. "verified" = the rule's content was read in the statute or
# regulation text (official or a full-text mirror); False = only secondary
# summaries were found (the notes say which), or nothing.
# --------------------------------------------------------------------------

CURRENT = RuleTable(
    TABLE_VERSION,
    (
        # ---- Federal ------------------------------------------------------
        _hours(
            "US.hours", "US", (8, 0), (21, 0),
            "47 CFR 64.1200(c)(1) https://www.ecfr.gov/current/title-47/section-64.1200",
            True,
            "No telephone solicitation before 8 a.m. or after 9 p.m. local time at the called party's "
            "location. Text read as quoted at nwdebtresolution.com/post/telephone-consumer-protection-act-"
            "call-time-restrictions; also the FTC TSR, 16 CFR 310.4(c).",
        ),
        # ---- States with narrower hours ------------------------------------
        _hours(
            "US-FL.hours", "US-FL", (8, 0), (20, 0),
            "Fla. Stat. 501.616(6)(a) https://www.flsenate.gov/Laws/Statutes/2024/501.616",
            True,
            "Text read at lawserver.com (501.616) and in SB 1120 (2021) bill text at flsenate.gov. "
            "The hours are in 501.616(6) (Florida Telemarketing Act), not 501.059(8) as the issue brief "
            "guessed; 501.059 covers consent for automated calls.",
        ),
        _cap(
            "US-FL.cap", "US-FL",
            "Fla. Stat. 501.616(6)(b) https://www.flsenate.gov/Laws/Statutes/2024/501.616",
            True,
            "More than three commercial telephone solicitation calls to a person over a 24-hour period on "
            "the same subject matter, regardless of number used (SB 1120 (2021) text).",
        ),
        _hours(
            "US-OK.hours", "US-OK", (8, 0), (20, 0),
            "15 Okla. Stat. 775C.4 (Telephone Solicitation Act of 2022, HB 3168)",
            False,
            "Statute text of 775C.4 not retrieved. Secondary: dnc.com blog (2022), Nolo, ClickPoint chart "
            "(July 2025) all give 8:00–20:00. 15 O.S. 755.1 (automatic dial announcing devices: "
            "9:00–21:00) was read and is narrower only in the morning for such devices; not applied.",
        ),
        _cap(
            "US-OK.cap", "US-OK", "15 Okla. Stat. 775C.4", False,
            "Three calls per 24 h on the same subject: secondary sources only (dnc.com, ClickPoint).",
        ),
        _hours(
            "US-MD.hours", "US-MD", (8, 0), (20, 0),
            "Md. Code Com. Law 14-4503 (Stop the Spam Calls Act of 2023, SB 90), in force 2024-01-01",
            False,
            "Section text not retrieved (14-4501/14-4502 were). Secondary: WMAR-2 News, dnc.com, "
            "Kelley Drye (JD Supra): 8 a.m.–8 p.m. in the called party's time zone.",
        ),
        _cap(
            "US-MD.cap", "US-MD", "Md. Code Com. Law 14-4503", False,
            "Three calls or texts per 24 h about the same subject: WMAR-2 News, dnc.com.",
        ),
        _hours(
            "US-WA.hours", "US-WA", (8, 0), (20, 0),
            "RCW 19.158.040(2) https://app.leg.wa.gov/RCW/default.aspx?cite=19.158.040",
            True,
            "'shall not place calls ... received before 8:00 a.m. or after 8:00 p.m. at the call "
            "recipient's local time' (commercial telephone solicitors). RCW 80.36.390 read too: it has "
            "no hours clause in the text found.",
        ),
        _hours(
            "US-TX.hours", "US-TX", (9, 0), (21, 0),
            "Tex. Bus. & Com. Code 301.051 https://statutes.capitol.texas.gov/Docs/BC/htm/BC.301.htm",
            False,
            "Section text not retrieved (only its heading). Values as given in the issue and industry "
            "charts; Sunday row below.", weekdays=_MON_SAT,
        ),
        _hours(
            "US-TX.sunday", "US-TX", (12, 0), (21, 0),
            "Tex. Bus. & Com. Code 301.051", False,
            "Sunday noon–9 p.m.: secondary only (a compliance tool's description: 'Texas Sundays start at "
            "noon').", weekdays=frozenset({7}),
        ),
        _hours(
            "US-CT.hours", "US-CT", (9, 0), (20, 0),
            "Conn. Gen. Stat. 42-288a as amended by P.A. 23-98 (SB 1058), eff. 2023-10-01 "
            "https://www.cga.ct.gov/current/pub/chap_743m.htm",
            False,
            "Hours clause not in the excerpts retrieved. G2 Leads chart (2025): 9 AM–8 PM; an older "
            "ClickPoint chart says 9–9 (pre-2023). The narrower 9–8 is applied.",
        ),
        _hours(
            "US-KY.hours", "US-KY", (10, 0), (21, 0),
            "KRS 367.46951–367.46999 (Kentucky telephone solicitation) — exact section not found",
            False,
            "ClickPoint and G2 charts: 10 AM–9 PM. No statute text with a 10 a.m. start was found; "
            "KRS 367.461(2)(e) (automated recorded-message equipment: 8 a.m.–9 p.m.) was read.",
        ),
        _hours(
            "US-MI.hours", "US-MI", (9, 0), (21, 0),
            "MCL 445.111 et seq. (Home Solicitation Sales Act) — hours clause not found",
            False,
            "ClickPoint chart shows a 9 AM start for Michigan; its end time was cut off in the excerpt, "
            "so the federal 21:00 end is kept: the only narrowing applied is the 09:00 start.",
        ),
        _hours(
            "US-MN.hours", "US-MN", (9, 0), (21, 0),
            "Minn. Stat. 325E.26–325E.31 (automatic dialing-announcing devices) — hours clause not found",
            False,
            "Not verified: the Minnesota AG memo on 325E.27 read has no hours in the excerpt. Kept at "
            "9:00–21:00 as commonly charted and as the issue lists Minnesota.",
        ),
        _hours(
            "US-NM.hours", "US-NM", (9, 0), (21, 0),
            "NMSA 1978 57-12-22(B)(5) https://law.justia.com/codes/new-mexico/2006/nmrc/jd_57-12-22-13117.html",
            True,
            "'telephone solicitation ... received before 9:00 a.m. or after 9:00 p.m.' (text read in the "
            "2006 compilation; later amendments not checked).",
        ),
        _hours(
            "US-NV.hours", "US-NV", (9, 0), (21, 0),
            "NRS 597.814(2)(a)",
            True,
            "Devices for automatic dialing and announcing (prerecorded messages): no call received in "
            "Nevada between 9 p.m. and 9 a.m. (text read at contactcentercompliance.com). Applied to all "
            "calls because an AI voice agent is a synthesized voice; other Nevada hours claims unverified.",
        ),
        _hours(
            "US-MA.hours", "US-MA", (8, 0), (20, 0),
            "201 CMR 12.02(2) https://regulations.justia.com/states/massachusetts/201-cmr/title-201-cmr-12-00/section-12-02",
            True,
            "'between the hours of 8:00 P.M. to 8:00 A.M., local time at the consumer's location' "
            "(unsolicited telephonic sales calls, under M.G.L. c. 159C).",
        ),
        # ---- Sunday and holiday bans ----------------------------------------
        _hours(
            "US-MS.hours", "US-MS", (8, 0), (20, 0),
            "Miss. Code Ann. 77-3-723(1)", True,
            "'between the hours of 8:00 a.m. and 8:00 p.m. Central Standard Time' (text read at "
            "getpocketlaw.com and quoted by dnc.com, 2024). Mississippi is wholly in America/Chicago; the "
            "callee's local clock is used.",
        ),
        _rule(
            "US-MS.sunday", "US-MS", RuleKind.NO_SUNDAY, "Miss. Code Ann. 77-3-723(1)", True,
            "'No telephone solicitations may be made on a Sunday.' The former PSC holiday ban "
            "(39 Miss. Admin. Code Pt. I R. 1:28) was repealed after HB 1225 (2023): no holiday row.",
        ),
        _hours(
            "US-AL.hours", "US-AL", (8, 0), (20, 0),
            "Alabama PSC telephone-solicitation rules (Ala. Admin. Code ch. 770-X) — section not found",
            False,
            "ClickPoint / G2 charts and Drop Cowboy: 8 AM–8 PM Mon–Sat, no Sunday, no holidays. dnc.com "
            "notes the PSC rules apply to telephone utilities; applied anyway as the safe side.",
        ),
        _rule("US-AL.sunday", "US-AL", RuleKind.NO_SUNDAY, "Alabama PSC rules (see US-AL.hours)", False,
              "Secondary charts only."),
        _rule("US-AL.holiday", "US-AL", RuleKind.NO_HOLIDAY, "Alabama PSC rules (see US-AL.hours); "
              "holidays per Ala. Code 1-3-8", False, "Secondary charts only."),
        _hours(
            "US-LA.hours", "US-LA", (8, 0), (20, 0),
            "LPSC Do Not Call Program General Order R-29617 (La. R.S. 45:844.11 et seq.)", False,
            "Order text not retrieved; ClickPoint chart: 8 AM–8 PM, no Sunday, no holidays. Not "
            "modelled: the total ban during a declared state of emergency (La. R.S. 45:844.31).",
        ),
        _rule("US-LA.sunday", "US-LA", RuleKind.NO_SUNDAY, "LPSC General Order R-29617", False,
              "Secondary charts only."),
        _rule("US-LA.holiday", "US-LA", RuleKind.NO_HOLIDAY, "LPSC General Order R-29617", False,
              "ClickPoint: only the holidays the PSC names are restricted; the holidays package list for "
              "LA is used, which may be a superset (safe side)."),
        _hours(
            "US-RI.weekdays", "US-RI", (9, 0), (18, 0),
            "R.I. Gen. Laws 5-61-3.6 (hours of operation as defined in 5-61-2(9)) "
            "http://webserver.rilin.state.ri.us/Statutes/TITLE5/5-61/5-61-3.6.HTM",
            False,
            "5-61-3.6 read: unsolicited telephonic sales calls only during 'hours of operation'. The "
            "definition in 5-61-2(9) was not retrieved; 9–18 Mon–Fri / 10–17 Sat / none on Sundays and "
            "holidays are the commonly charted values.", weekdays=_MON_FRI,
        ),
        _hours("US-RI.saturday", "US-RI", (10, 0), (17, 0), "R.I. Gen. Laws 5-61-2(9), 5-61-3.6", False,
               "See US-RI.weekdays.", weekdays=frozenset({6})),
        _rule("US-RI.sunday", "US-RI", RuleKind.NO_SUNDAY, "R.I. Gen. Laws 5-61-2(9), 5-61-3.6", False,
              "See US-RI.weekdays."),
        _rule("US-RI.holiday", "US-RI", RuleKind.NO_HOLIDAY, "R.I. Gen. Laws 5-61-2(9); holidays 25-1-1",
              False, "See US-RI.weekdays. R.I. Gen. Laws 25-1-1 (general holidays) was read."),
        _rule(
            "US-UT.sunday", "US-UT", RuleKind.NO_SUNDAY,
            "Utah Code 13-25a-103(3)(b) https://codes.findlaw.com/ut/title-13-commerce-and-trade/ut-code-sect-13-25a-103/",
            True, "Without prior express consent: not between 9 p.m. and 8 a.m. (= federal), not on a Sunday, "
            "not on a legal holiday.",
        ),
        _rule("US-UT.holiday", "US-UT", RuleKind.NO_HOLIDAY, "Utah Code 13-25a-103(3)(c)", True,
              "See US-UT.sunday."),
        _rule(
            "US-PA.holiday", "US-PA", RuleKind.NO_HOLIDAY,
            "73 P.S. 2245(a)(10) (Telemarketer Registration Act, Act 73 of 2019, eff. 2019-12-03)", False,
            "Statute text not read; Jenkins Law Library and Mac Murray & Shuster both report the legal-"
            "holiday ban and the section.",
        ),
        _rule(
            "US-PA.sunday", "US-PA", RuleKind.NO_SUNDAY, "Pennsylvania, reported effective 2026-10-18 — "
            "statute not identified", False,
            "Single secondary source (a calling-hours tool's description: 'Pennsylvania bans Sundays from "
            "2026-10-18'). Applied as the safe side; verify.",
        ),
    ),
)
