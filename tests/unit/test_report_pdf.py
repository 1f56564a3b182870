import io
import re
import zlib
from datetime import datetime, timezone

import pytest

from server.domain.report_pdf import ReportData, pdf_safe_text, render_pdf


def make(**kw):
    base = dict(
        batch_name="January Payment Reminders",
        batch_id="batch_xyz789",
        status="completed",
        agent_name="Payment Collection Agent",
        from_number="+12025550100",
        created=datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc),
        started=datetime(2024, 1, 15, 10, 31, tzinfo=timezone.utc),
        completed=datetime(2024, 1, 15, 11, 15, tzinfo=timezone.utc),
        total=1234,
        successful=1000,
        failed=200,
        cancelled=20,
        suppressed=14,
        success_rate=1000 / 1234,
        failure_rate=200 / 1234,
        average_duration_seconds=155.4,
        total_duration_seconds=155_400,
        cost_micros=189_070_000,
        attempts_histogram={0: 34, 1: 900, 2: 200, 3: 100},
        outcomes_by_attempt={
            (1, "completed"): 800,
            (1, "no_answer"): 300,
            (1, "busy"): 100,
            (2, "completed"): 150,
            (2, "no_answer"): 150,
            (3, "completed"): 50,
            (3, "no_answer"): 50,
        },
        status_breakdown={"completed": 1000, "failed": 150, "invalid_number": 50, "cancelled": 20, "suppressed": 14},
    )
    base.update(kw)
    return ReportData(**base)


FIGURES = [
    "January Payment Reminders",
    "batch_xyz789",
    "Payment Collection Agent",
    "+12025550100",
    "Jan 15, 2024 10:30 AM UTC",
    "Jan 15, 2024 11:15 AM UTC",
    "1,234",  # total
    "1,000",  # successful
    "81.0%",  # success rate
    "16.2%",  # failure rate
    "2m 35s",  # average duration
    "43h 10m 00s",  # total connected time
    "$189.07",  # total cost
    "1,600",  # call attempts
    "Successful on a retry",
    "Outcomes by attempt",
    "No answer",
    "Status breakdown",
    "Invalid number",
]


def raw_text(pdf: bytes) -> str:
    return pdf.decode("latin-1")


def test_is_a_pdf_compressed_by_default():
    data = render_pdf(make())
    assert data.startswith(b"%PDF")
    assert data.rstrip().endswith(b"%%EOF")
    # content streams are deflated: the figures are not in the raw bytes
    assert b"$189.07" not in data


def test_figures_in_uncompressed_output():
    text = raw_text(render_pdf(make(), compress=False))
    for figure in FIGURES:
        assert f"({figure}" in text or figure in text, figure


def test_figures_in_compressed_streams():
    """Inflate every FlateDecode stream with zlib (no extra dependency)."""
    data = render_pdf(make())
    inflated = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            inflated.append(zlib.decompress(m.group(1)).decode("latin-1"))
        except zlib.error:
            pass
    text = "\n".join(inflated)
    for figure in FIGURES:
        assert figure in text, figure


def test_chart_is_drawn_with_rectangles():
    text = raw_text(render_pdf(make(), compress=False))
    # filled rectangles: "x y w h re f"
    bars = re.findall(r"[\d.]+ [\d.]+ [\d.]+ -?[\d.]+ re f", text)
    assert len(bars) >= 5 + 4  # status bars + histogram bars


def test_non_latin1_names_do_not_crash():
    data = make(batch_name="Łódź — 東京 “Q1” payments 🚀", agent_name="Агент", from_number="+12025550100")
    text = raw_text(render_pdf(data, compress=False))
    assert "L\xf3dz - ?? \"Q1\" payments ?" in text
    assert pdf_safe_text("Zoë") == "Zoë"  # Latin-1 kept
    assert pdf_safe_text("a\nb\tc") == "a b c"
    assert pdf_safe_text(None) == ""


def test_empty_batch_renders():
    data = make(
        total=0, successful=0, failed=0, cancelled=0, suppressed=0, success_rate=0.0, failure_rate=0.0,
        average_duration_seconds=0.0, total_duration_seconds=0.0, cost_micros=0,
        attempts_histogram={}, outcomes_by_attempt={}, status_breakdown={},
        started=None, completed=None,
    )
    text = raw_text(render_pdf(data, compress=False))
    assert "No contacts." in text
    assert "$0.00" in text
    assert "0.0%" in text


def test_ten_attempts_and_many_outcomes_render():
    outcomes = {}
    for attempt in range(1, 11):
        for outcome in ["completed", "no_answer", "busy", "timeout", "invalid_number", "blocked",
                        "carrier_error", "agent_error", "dialer_lost"]:
            outcomes[(attempt, outcome)] = attempt * 3
    data = make(
        attempts_histogram={k: 1000 - k for k in range(0, 11)},
        outcomes_by_attempt=outcomes,
        status_breakdown={s: 10 for s in ["completed", "failed", "invalid_number", "blocked", "carrier_error",
                                          "cancelled", "suppressed", "queued", "pending", "something_new"]},
        batch_name="x" * 300,
        agent_name="y" * 300,
    )
    pdf = render_pdf(data, compress=False)
    assert pdf.startswith(b"%PDF")
    assert b"Dialer lost" in pdf
    assert b"Something new" in pdf


def test_text_extraction_with_pypdf():
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(make())))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for figure in ["1,234", "81.0%", "$189.07", "2m 35s", "batch_xyz789"]:
        assert figure in text, figure
