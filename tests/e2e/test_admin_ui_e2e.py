"""End to end through a real headless Chromium (Playwright) and a real
``streamlit run admin_ui/app.py``: sign in, upload a CSV, read the validation
report, create a batch, watch it complete, download the CSV export and check
its rows. Screenshots of the create tab, the batch list and the detail page
go to tests/e2e/artifacts/.

Backend: the real server + a real dialer + the simulated carrier process
(the ``stack`` fixture of tests/conftest.py); every UI test runs against the
real stack, there is no fake of the API.

Chromium comes from Debian (/usr/bin/chromium), never ``playwright install``.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.helpers import free_port as _free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "admin_ui" / "app.py"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("BATCHCALLS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CSV = (
    "phone,name,plan\n"
    "+14155552671,Ann Lee,gold\n"
    "+442071838750,Bob Smith,silver\n"
    "not-a-number,Bad Row,\n"
    "+14155552671,Ann Again,\n"
)
COMPLETE_TIMEOUT_S = float(os.environ.get("BATCHCALLS_E2E_COMPLETE_TIMEOUT", "240"))


@pytest.fixture()
def backend(stack_with_dialer):
    stack = stack_with_dialer
    return SimpleNamespace(grpc_address=stack.grpc_address, new_org=stack.new_org, name="stack")


@pytest.fixture()
def ui(backend, tmp_path):
    """`streamlit run admin_ui/app.py` on a free port, pointed at the backend."""
    port = _free_port()
    env = dict(os.environ, BATCHCALLS_GRPC_ADDR=backend.grpc_address, PYTHONPATH=str(ROOT))
    env.pop("BATCHCALLS_API_KEY", None)
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError((tmp_path / "streamlit.log").read_text())
        time.sleep(0.3)
    yield SimpleNamespace(url=url, backend=backend)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture()
def page():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("no Chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        yield pg
        context.close()
        browser.close()


def settle(page, timeout_s: float = 30) -> None:
    """Waits until the script run is over and no stale element is left."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
                 && !document.querySelector('[data-stale="true"]')""",
        timeout=timeout_s * 1000,
    )


def shot(page, name: str) -> None:
    """Screenshot of the whole app (Streamlit scrolls inside its own container)."""
    settle(page)
    height = page.evaluate(
        """() => { const m = document.querySelector('[data-testid="stMain"]') ||
                             document.querySelector('section.main');
                   return Math.max(1000, m ? m.scrollHeight + 80 : 1000); }"""
    )
    page.set_viewport_size({"width": 1440, "height": min(int(height), 6000)})
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 1000})


def _metric_value(page, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_create_batch_watch_it_complete_and_export(ui, page, tmp_path):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    prefix = ui.backend.name
    keys = ui.backend.new_org(f"E2E Org {prefix}")

    # Sign in.
    page.goto(ui.url)
    page.get_by_label("API key", exact=True).fill(keys.owner_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("tab", name="Create New")).to_be_visible(timeout=30_000)
    settle(page)
    expect(page.get_by_text(f"E2E Org {prefix}").first).to_be_visible()

    # Upload the CSV and read the validation report.
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_text(CSV)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(csv_path))
    expect(page.get_by_text("Validation report").first).to_be_visible(timeout=30_000)
    settle(page)
    assert _metric_value(page, "Total rows") == "4"
    assert _metric_value(page, "Valid rows") == "2"
    assert _metric_value(page, "Invalid rows") == "1"
    assert _metric_value(page, "Duplicate phones") == "1"
    expect(page.get_by_text("Estimated cost").first).to_be_visible()

    # Configure and review.
    name = f"E2E batch {prefix}"
    page.get_by_label("Batch name *", exact=True).fill(name)
    page.get_by_label("Batch name *", exact=True).press("Tab")
    expect(page.get_by_text("✅ Batch name entered").first).to_be_visible()
    shot(page, f"create_tab_{prefix}.png")

    # Create: the detail view opens with a shareable ?batch= link.
    page.get_by_role("button", name=re.compile("Create batch")).click()
    page.wait_for_url(re.compile(r"[?&]batch="), timeout=60_000)
    expect(page.get_by_text("Batch information").first).to_be_visible(timeout=30_000)
    batch_id = re.search(r"[?&]batch=([^&]+)", page.url).group(1)
    assert batch_id

    # Live refresh until the simulated provider has called everyone.
    expect(page.locator("span.bc-badge", has_text="Completed").first).to_be_visible(
        timeout=COMPLETE_TIMEOUT_S * 1000
    )
    settle(page)
    expect(page.get_by_text("Showing 2 of 2 contacts").first).to_be_visible(timeout=30_000)
    assert _metric_value(page, "Total Contacts") == "2"
    shot(page, f"detail_page_{prefix}.png")

    # Export: all contacts as CSV.
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name=re.compile("CSV — all contacts")).click()
    target = tmp_path / "export.csv"
    dl.value.save_as(str(target))
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 3, rows  # header + the two valid contacts
    flat = "\n".join(",".join(r) for r in rows)
    assert "14155552671" in flat and "442071838750" in flat
    assert "Ann Lee" in flat and "Bob Smith" in flat

    # The batch list shows it with its status.
    page.get_by_role("button", name=re.compile("All batches")).click()
    settle(page)
    page.get_by_role("tab", name="Your Batches").click()
    expect(page.get_by_text(name).first).to_be_visible(timeout=30_000)
    shot(page, f"batch_list_{prefix}.png")

    # The deep link opens the batch once signed in (a new browser session
    # asks for the API key first; the link survives the sign-in).
    page.goto(f"{ui.url}/?batch={batch_id}")
    page.get_by_label("API key", exact=True).fill(keys.member_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Batch information").first).to_be_visible(timeout=30_000)
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def test_hostile_names_stay_text_and_the_toolbar_is_hidden(ui, page):
    """Names that are HTML payloads, created through the server, render as
    text in the real DOM (no injected element, no handler ran), and the
    developer toolbar (deploy / rerun / settings) is not offered."""
    import uuid

    from playwright.sync_api import expect

    from admin_ui.client import BatchcallsClient
    from batchcalls.v1 import batch_service_pb2, resources_pb2 as res

    img = "<img src=x id=pwn-img onerror=window.__pwned=1>"
    keys = ui.backend.new_org(f"{img} Org")
    client = BatchcallsClient(ui.backend.grpc_address, keys.owner_key)
    agent = client.create_agent(res.Agent(display_name="<script>window.__pwned=2</script> agent",
                                          architecture=res.AGENT_ARCHITECTURE_PIPELINE, active=True))
    batch = client.create_batch(batch_service_pb2.CreateBatchRequest(
        request_id=str(uuid.uuid4()), display_name=f"{img} batch", agent=agent.name,
        from_phone_number=keys.phone_number_name, filename="c.csv",
        csv_content=b"phone,name,<b id=pwn-b>h</b>\n+14155550101,<img src=y id=pwn-img2 onerror=window.__pwned=3>,v\n",
        scheduled_local_time=(datetime.date.today() + datetime.timedelta(days=30)).isoformat() + "T09:00",
        timezone="UTC", calling_window_mode=res.CALLING_WINDOW_MODE_NONE,
    )).batch

    page.goto(f"{ui.url}/?batch={batch.batch_id}")
    page.get_by_label("API key", exact=True).fill(keys.owner_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Batch information").first).to_be_visible(timeout=30_000)
    settle(page)
    expect(page.get_by_text(f"{img} batch").first).to_be_visible()
    expect(page.get_by_text(f"{img} Org").first).to_be_visible()
    for selector in ("#pwn-img", "#pwn-img2", "#pwn-b", "img[src='x']", "[onerror]"):
        assert page.locator(selector).count() == 0, selector
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
