"""PDF summary report of a batch, drawn with fpdf2 (pure: bytes in memory,
no browser, no matplotlib, no I/O).

Contents: title, batch details, totals and rates, durations, cost, retry
statistics (derived figures and an outcome x attempt table) and two bar
charts drawn with rectangles and labels: the status breakdown and the
number of contacts by attempts used.

Conventions of ``ReportData``:

* ``success_rate`` / ``failure_rate`` are fractions in [0, 1] (0.85 is
  printed as ``85.0%``).
* Durations are seconds; ``cost_micros`` is micro-dollars (see
  ``server.domain.cost``).
* ``attempts_histogram``: attempts used -> number of contacts (0 = never
  called, e.g. suppressed or cancelled before dialing).
* ``outcomes_by_attempt``: (attempt number starting at 1, outcome) ->
  number of attempts with that outcome.
* ``status_breakdown``: contact status -> number of contacts.
* Datetimes are printed in UTC (naive ones are taken as UTC).

The built-in Helvetica font only covers Latin-1: other characters are
transliterated where Unicode offers a plain form (``Łódź`` -> ``Lodz``,
``—`` -> ``-``) and replaced by ``?`` otherwise, so any name renders.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from server.domain.cost import format_usd

__all__ = ["ReportData", "render_pdf", "pdf_safe_text"]


@dataclass(frozen=True)
class ReportData:
    batch_name: str
    batch_id: str
    status: str
    agent_name: str
    from_number: str
    created: datetime | None
    started: datetime | None
    completed: datetime | None
    total: int
    successful: int
    failed: int
    cancelled: int
    suppressed: int
    success_rate: float
    failure_rate: float
    average_duration_seconds: float
    total_duration_seconds: float
    cost_micros: int
    attempts_histogram: dict[int, int] = field(default_factory=dict)
    outcomes_by_attempt: dict[tuple[int, str], int] = field(default_factory=dict)
    status_breakdown: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------
# text helpers

_REPLACEMENTS = {
    "\u2014": "-", "\u2013": "-", "\u2012": "-", "\u2010": "-", "\u2011": "-", "\u2212": "-",
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2022": "*", "\u2026": "...", "\u2020": "+", "\u2122": "TM", "\u20ac": "EUR",
    "\u0141": "L", "\u0142": "l", "\u0110": "D", "\u0111": "d", "\u0131": "i",
    "\u0152": "OE", "\u0153": "oe", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
}


def pdf_safe_text(text: object) -> str:
    """Text the core (Latin-1) fonts can draw; never raises."""
    s = "" if text is None else str(text)
    out: list[str] = []
    for ch in s:
        code = ord(ch)
        if ch in _REPLACEMENTS:
            out.append(_REPLACEMENTS[ch])
        elif code < 32 or 127 <= code < 160:
            out.append(" ")  # control characters (newlines, tabs) would break cells
        elif code < 256:
            out.append(ch)
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", ch) if ord(c) < 256 and not unicodedata.combining(c)
            )
            out.append(base if base and all(ord(c) >= 32 for c in base) else "?")
    return "".join(out)


def _fmt_int(n: int) -> str:
    return f"{int(n):,}"


def _fmt_pct(rate: float) -> str:
    try:
        return f"{float(rate) * 100:.1f}%"
    except (TypeError, ValueError):
        return "-"


def _fmt_dt(value: datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%b %d, %Y %I:%M %p UTC")


def _fmt_duration(seconds: float) -> str:
    """``45s``, ``2m 35s``, ``1h 02m 03s`` (rounded to the second)."""
    try:
        total = int(round(float(seconds)))
    except (TypeError, ValueError):
        return "-"
    if total < 0:
        total = 0
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


def _label(code: str) -> str:
    s = str(code or "").replace("_", " ").strip()
    return s[:1].upper() + s[1:] if s else "-"


# Seed colours (Batch Statuses / contact statuses), as RGB.
_STATUS_COLORS = {
    "pending": (156, 163, 175),
    "queued": (147, 51, 234),
    "dialing": (59, 130, 246),
    "connected": (6, 182, 212),
    "completed": (34, 197, 94),
    "failed": (239, 68, 68),
    "busy": (234, 179, 8),
    "no_answer": (249, 115, 22),
    "timeout": (249, 115, 22),
    "invalid_number": (220, 38, 38),
    "blocked": (185, 28, 28),
    "carrier_error": (245, 158, 11),
    "cancelled": (107, 114, 128),
    "suppressed": (75, 85, 99),
}
_DEFAULT_BAR = (59, 130, 246)


# --------------------------------------------------------------------------
# document


class _ReportPDF(FPDF):
    footer_text = ""

    def footer(self) -> None:  # called by fpdf2 on every page
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(120, 120, 120)
        self.cell(0, 5, f"{self.footer_text} - page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0, 0, 0)


_LINE = 6.0


def _ensure_space(pdf: FPDF, height: float) -> None:
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()


def _section(pdf: FPDF, title: str, need: float = 30.0) -> None:
    _ensure_space(pdf, need)
    pdf.ln(3)
    pdf.set_font("Helvetica", style="B", size=13)
    pdf.set_text_color(30, 64, 175)
    pdf.cell(0, 8, pdf_safe_text(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(200, 200, 200)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(2)


def _kv_table(pdf: FPDF, rows: list[tuple[str, str]], key_width: float = 65.0) -> None:
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_draw_color(220, 220, 220)
    for i, (key, value) in enumerate(rows):
        _ensure_space(pdf, _LINE)
        fill = i % 2 == 0
        pdf.set_fill_color(243, 244, 246)
        pdf.set_font("Helvetica", style="B", size=10)
        pdf.cell(key_width, _LINE, pdf_safe_text(key), border=1, fill=fill)
        pdf.set_font("Helvetica", size=10)
        value_text = pdf_safe_text(value)
        # Truncate overlong values rather than overflow the cell.
        max_w = width - key_width - 2
        if pdf.get_string_width(value_text) > max_w:
            while value_text and pdf.get_string_width(value_text + "...") > max_w:
                value_text = value_text[:-1]
            value_text += "..."
        pdf.cell(width - key_width, _LINE, value_text, border=1, fill=fill,
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _grid_table(pdf: FPDF, header: list[str], rows: list[list[str]], first_width: float) -> None:
    width = pdf.w - pdf.l_margin - pdf.r_margin
    n = len(header) - 1
    other = (width - first_width) / max(n, 1)
    font_size = 9 if n <= 8 else 7

    def draw_header() -> None:
        pdf.set_font("Helvetica", style="B", size=font_size)
        pdf.set_fill_color(229, 231, 235)
        pdf.set_draw_color(200, 200, 200)
        for j, text in enumerate(header):
            last = j == len(header) - 1
            pdf.cell(first_width if j == 0 else other, _LINE, pdf_safe_text(text), border=1, fill=True,
                     align="L" if j == 0 else "C",
                     new_x=XPos.LMARGIN if last else XPos.RIGHT, new_y=YPos.NEXT if last else YPos.TOP)

    _ensure_space(pdf, _LINE * 2)
    draw_header()
    for i, row in enumerate(rows):
        if pdf.get_y() + _LINE > pdf.page_break_trigger:
            pdf.add_page()
            draw_header()
        bold = i == len(rows) - 1 and row and row[0].startswith("All")
        pdf.set_font("Helvetica", style="B" if bold else "", size=font_size)
        for j, text in enumerate(row):
            last = j == len(row) - 1
            pdf.cell(first_width if j == 0 else other, _LINE, pdf_safe_text(text), border=1,
                     align="L" if j == 0 else "R",
                     new_x=XPos.LMARGIN if last else XPos.RIGHT, new_y=YPos.NEXT if last else YPos.TOP)


def _hbar_chart(pdf: FPDF, items: list[tuple[str, int]], colors: list[tuple[int, int, int]]) -> None:
    """Horizontal bars: label | bar | value."""
    label_w, value_w, bar_h, gap = 40.0, 22.0, 6.0, 2.0
    width = pdf.w - pdf.l_margin - pdf.r_margin
    area = width - label_w - value_w
    top = max((v for _, v in items), default=0)
    total = sum(v for _, v in items)
    _ensure_space(pdf, len(items) * (bar_h + gap) + 4)
    pdf.set_font("Helvetica", size=9)
    x0 = pdf.l_margin
    for (label, value), color in zip(items, colors):
        y = pdf.get_y()
        pdf.set_xy(x0, y)
        pdf.cell(label_w, bar_h, pdf_safe_text(label), align="R")
        length = area * value / top if top else 0.0
        if value and length < 0.6:
            length = 0.6  # keep tiny non-zero values visible
        if length:
            pdf.set_fill_color(*color)
            pdf.rect(x0 + label_w + 2, y + 0.75, length, bar_h - 1.5, style="F")
        share = f" ({value / total * 100:.0f}%)" if total else ""
        pdf.set_xy(x0 + label_w + 4 + length, y)
        pdf.cell(value_w + 20, bar_h, f"{_fmt_int(value)}{share}")
        pdf.set_xy(x0, y + bar_h + gap)
    pdf.set_x(pdf.l_margin)


def _vbar_chart(pdf: FPDF, items: list[tuple[str, int]], axis_title: str, height: float = 55.0) -> None:
    """Vertical bars with value labels above and category labels below."""
    width = pdf.w - pdf.l_margin - pdf.r_margin
    _ensure_space(pdf, height + 22)
    top = max((v for _, v in items), default=0)
    x0 = pdf.l_margin + 10
    y_base = pdf.get_y() + 6 + height
    plot_w = width - 20
    n = max(len(items), 1)
    slot = plot_w / n
    bar_w = min(slot * 0.6, 25.0)
    pdf.set_draw_color(120, 120, 120)
    pdf.line(x0, y_base, x0 + plot_w, y_base)
    pdf.set_font("Helvetica", size=8)
    for i, (label, value) in enumerate(items):
        cx = x0 + slot * i + slot / 2
        bar_h = height * value / top if top else 0.0
        if value and bar_h < 0.6:
            bar_h = 0.6
        if bar_h:
            pdf.set_fill_color(*_DEFAULT_BAR)
            pdf.rect(cx - bar_w / 2, y_base - bar_h, bar_w, bar_h, style="F")
        pdf.set_xy(cx - slot / 2, y_base - bar_h - 5)
        pdf.cell(slot, 5, _fmt_int(value), align="C")
        pdf.set_xy(cx - slot / 2, y_base + 0.5)
        pdf.cell(slot, 5, pdf_safe_text(label), align="C")
    pdf.set_xy(pdf.l_margin, y_base + 6)
    pdf.set_font("Helvetica", style="I", size=8)
    pdf.cell(width, 5, pdf_safe_text(axis_title), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _retry_figures(data: ReportData) -> list[tuple[str, str]]:
    hist = {int(k): int(v) for k, v in (data.attempts_histogram or {}).items()}
    outcomes = {(int(a), str(o).lower()): int(n) for (a, o), n in (data.outcomes_by_attempt or {}).items()}
    total_attempts = sum(outcomes.values()) or sum(k * v for k, v in hist.items())
    called = sum(v for k, v in hist.items() if k >= 1)
    retried = sum(v for k, v in hist.items() if k >= 2)
    retries = max(total_attempts - called, 0) if called else sum((k - 1) * v for k, v in hist.items() if k >= 2)
    success_on_retry = sum(n for (a, o), n in outcomes.items() if a >= 2 and o == "completed")
    mean_attempts = total_attempts / called if called else 0.0
    return [
        ("Call attempts", _fmt_int(total_attempts)),
        ("Contacts called", _fmt_int(called)),
        ("Contacts retried", _fmt_int(retried)),
        ("Retry attempts", _fmt_int(retries)),
        ("Successful on a retry", _fmt_int(success_on_retry)),
        ("Mean attempts per called contact", f"{mean_attempts:.2f}"),
    ]


def _retry_table(data: ReportData) -> tuple[list[str], list[list[str]]] | None:
    outcomes: dict[tuple[int, str], int] = {}
    for (a, o), n in (data.outcomes_by_attempt or {}).items():
        key = (int(a), str(o).lower())
        outcomes[key] = outcomes.get(key, 0) + int(n)
    if not outcomes:
        return None
    attempts = sorted({a for a, _ in outcomes})
    by_outcome: dict[str, int] = {}
    for (_, o), n in outcomes.items():
        by_outcome[o] = by_outcome.get(o, 0) + n
    order = sorted(by_outcome, key=lambda o: (-by_outcome[o], o))
    header = ["Outcome"] + [f"Attempt {a}" if len(attempts) <= 6 else f"#{a}" for a in attempts] + ["Total"]
    rows = []
    for o in order:
        rows.append([_label(o)] + [_fmt_int(outcomes.get((a, o), 0)) for a in attempts] + [_fmt_int(by_outcome[o])])
    per_attempt = [sum(n for (a2, _), n in outcomes.items() if a2 == a) for a in attempts]
    rows.append(["All outcomes"] + [_fmt_int(n) for n in per_attempt] + [_fmt_int(sum(per_attempt))])
    return header, rows


def render_pdf(data: ReportData, *, compress: bool = True) -> bytes:
    """Render the batch summary as PDF bytes.

    ``compress=False`` writes uncompressed content streams, so the figures
    can be found in the raw bytes (used by tests; the output is larger).
    """
    pdf = _ReportPDF(orientation="P", unit="mm", format="A4")
    pdf.set_compression(compress)
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.footer_text = pdf_safe_text(f"batchcalls report - {data.batch_id}")
    pdf.set_title(pdf_safe_text(f"Batch report - {data.batch_name}"))
    pdf.set_author("batchcalls")
    pdf.set_creator("batchcalls")
    pdf.add_page()

    # Title
    pdf.set_font("Helvetica", style="B", size=20)
    pdf.multi_cell(0, 10, pdf_safe_text(data.batch_name) or "Untitled batch",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=10)
    pdf.set_text_color(100, 100, 100)
    pdf.cell(0, 6, pdf_safe_text(f"Batch summary report - {_label(data.status)}"),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)

    # Details
    _section(pdf, "Batch details")
    _kv_table(pdf, [
        ("Batch ID", data.batch_id),
        ("Name", data.batch_name),
        ("Status", _label(data.status)),
        ("Agent", data.agent_name or "-"),
        ("From number", data.from_number or "-"),
        ("Created", _fmt_dt(data.created)),
        ("Started", _fmt_dt(data.started)),
        ("Completed", _fmt_dt(data.completed)),
    ])

    # Totals and rates
    accounted = data.successful + data.failed + data.cancelled + data.suppressed
    results = [
        ("Total contacts", _fmt_int(data.total)),
        ("Successful calls", _fmt_int(data.successful)),
        ("Failed calls", _fmt_int(data.failed)),
        ("Cancelled", _fmt_int(data.cancelled)),
        ("Suppressed (do not call)", _fmt_int(data.suppressed)),
    ]
    if data.total > accounted:
        results.append(("Not final", _fmt_int(data.total - accounted)))
    results += [
        ("Success rate", _fmt_pct(data.success_rate)),
        ("Failure rate", _fmt_pct(data.failure_rate)),
    ]
    _section(pdf, "Results")
    _kv_table(pdf, results)

    # Durations and cost
    _section(pdf, "Durations and cost")
    cost_rows = [
        ("Average call duration", _fmt_duration(data.average_duration_seconds)),
        ("Total connected time", _fmt_duration(data.total_duration_seconds)),
        ("Total cost", format_usd(int(data.cost_micros))),
    ]
    if data.total:
        cost_rows.append(("Cost per contact", format_usd(round(int(data.cost_micros) / data.total))))
    if data.successful:
        cost_rows.append(("Cost per successful call", format_usd(round(int(data.cost_micros) / data.successful))))
    _kv_table(pdf, cost_rows)

    # Retry statistics
    _section(pdf, "Retry statistics")
    _kv_table(pdf, _retry_figures(data))
    table = _retry_table(data)
    if table is not None:
        pdf.ln(3)
        pdf.set_font("Helvetica", style="B", size=10)
        _ensure_space(pdf, _LINE * 3)
        pdf.cell(0, _LINE, "Outcomes by attempt", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        _grid_table(pdf, table[0], table[1], first_width=45.0)

    # Charts
    breakdown = [(str(k).lower(), int(v)) for k, v in (data.status_breakdown or {}).items() if int(v) > 0]
    breakdown.sort(key=lambda kv: (-kv[1], kv[0]))
    _section(pdf, "Status breakdown", need=20 + 8 * max(len(breakdown), 1))
    if breakdown:
        _hbar_chart(pdf, [(_label(k), v) for k, v in breakdown],
                    [_STATUS_COLORS.get(k, _DEFAULT_BAR) for k, _ in breakdown])
    else:
        pdf.set_font("Helvetica", size=10)
        pdf.cell(0, _LINE, "No contacts.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    hist = {int(k): int(v) for k, v in (data.attempts_histogram or {}).items() if int(v) > 0}
    _section(pdf, "Contacts by number of attempts", need=90)
    if hist:
        keys = list(range(min(hist), max(hist) + 1)) if max(hist) - min(hist) <= 20 else sorted(hist)
        _vbar_chart(pdf, [(str(k), hist.get(k, 0)) for k in keys], "Attempts used (0 = never called)")
    else:
        pdf.set_font("Helvetica", size=10)
        pdf.cell(0, _LINE, "No attempts recorded.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    return bytes(pdf.output())
