"""Admin UI hardening without a server: user data is escaped before it meets
markdown or HTML (vm.user_text), the sign-in form starts empty, and the
developer toolbar is hidden wherever the UI is launched.

The same escaping is checked against the real server, page by page, in
tests/integration/test_admin_ui_hostile.py.
"""

from __future__ import annotations

import html
import itertools
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from admin_ui import view_models as vm

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "admin_ui" / "app.py"
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert('x')</script>",
    '"><svg onload=alert(1)>',
    "<a href=\"javascript:alert(1)\">click</a>",
    "&lt;img src=x onerror=alert(1)&gt;",  # already-escaped text stays text
    "![t](https://evil.example/pixel.png)",
    "[click](javascript:alert(1))",
    "**bold** _it_ `code` ~~strike~~ $x^2$ :red[red] | a | b |",
    "line one\n# heading\r\n<img src=x onerror=alert(2)>",
    "\\<img src=x onerror=alert(3)>",
]


def displayed(markdown: str) -> str:
    """What markdown shows for text escaped by user_text: backslash escapes
    and entities undone (CommonMark does both in text)."""
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown))


# --- the one escaping helper --------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_user_text_is_inert(value):
    out = vm.user_text(value)
    # No tag can open, no entity is left for the browser to build one from.
    assert "<" not in out and ">" not in out and '"' not in out and "'" not in out
    # No markdown construct survives: every special character is escaped.
    assert not re.search(r"(?<!\\)[`*_\[\]|~$]", out.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
                         .replace("&quot;", "").replace("&#x27;", ""))
    assert "\n" not in out and "\r" not in out
    # And the reader still sees the characters typed (line breaks as spaces).
    assert displayed(out) == re.sub(r"[\r\n]+", " ", value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ""),
        (None, ""),
        ("Jan reminders", "Jan reminders"),
        ("<b>x</b>", "&lt;b&gt;x&lt;/b&gt;"),
        ("AT&T", "AT&amp;T"),
        ("a*b*", "a\\*b\\*"),
        ("[x](y)", "\\[x\\](y)"),
        ("127.0.0.1:9", "127.0.0.1:9"),
        ("a|b", "a\\|b"),
        ("a\nb", "a b"),
        (42, "42"),
    ],
)
def test_user_text_table(value, expected):
    assert vm.user_text(value) == expected


def test_badges_escape_their_label_and_color():
    out = vm.badge_html("<img src=x onerror=alert(1)>", 'red" onmouseover="alert(1)')
    assert "<img" not in out and "onmouseover" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert vm.batch_status_badge(vm.BS.BATCH_STATUS_RUNNING).endswith(">Running</span>")


def test_checklist_items_escape_the_batch_name():
    form = vm.CreateFormState(name="<img src=x onerror=alert(1)>")
    items = vm.review_checklist(form)
    line = next(i.markdown() for i in items if i.label == "Batch name entered")
    assert "<img" not in line and "&lt;img" in line


def test_api_errors_are_shown_escaped():
    """Server messages echo user input (names, CSV headers): never markup."""
    def page() -> None:
        import grpc

        from admin_ui.client import ApiError, FieldViolation
        from admin_ui.pages_impl.common import guarded, show_api_error

        show_api_error(
            ApiError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "agent <img src=x onerror=alert(1)> not found",
                [FieldViolation("<b>field</b>", "<script>alert(2)</script>")],
                reason="<i>R</i>",
            ),
            what="<svg onload=alert(3)>",
        )

        def boom() -> None:
            raise ValueError("<img src=x onerror=alert(4)>")

        guarded(boom)

    at = AppTest.from_function(page, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 2
    for value in errors:
        assert not re.search(r"<\s*(img|script|svg|b|i)\b", value, re.IGNORECASE), value
    joined = displayed("\n".join(errors))
    for typed in ("<img src=x onerror=alert(1)>", "<b>field</b>", "<script>alert(2)</script>",
                  "<svg onload=alert(3)>", "<img src=x onerror=alert(4)>"):
        assert typed in joined


def test_no_raw_html_sinks_besides_escaped_markdown():
    """Only st.markdown(..., unsafe_allow_html=True) renders HTML, and every
    such call is reviewed here; st.html and components.html are not used."""
    sources = {p: p.read_text(encoding="utf-8") for p in (ROOT / "admin_ui").rglob("*.py")}
    for path, text in sources.items():
        assert "st.html(" not in text and "components.v1" not in text and "components.html" not in text, path
    calls = sum(text.count("unsafe_allow_html=True") for p, text in sources.items() if "view_models" not in p.parts)
    # common.badge, signin role badge, batch detail: status badge, details table,
    # contact header; batch list: status badge.
    assert calls == 6, "a new unsafe_allow_html call: escape user data with vm.user_text and update this count"


# --- sign-in -------------------------------------------------------------------


def test_sign_in_form_starts_empty_even_with_a_key_in_the_environment(monkeypatch):
    monkeypatch.setenv("BATCHCALLS_API_KEY", "bc_live_secret_of_whoever_started_the_ui")
    monkeypatch.setenv("BATCHCALLS_GRPC_ADDR", "127.0.0.1:9")
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    field = at.text_input(key="signin_key")
    assert field.value == ""
    assert field.proto.default == ""
    assert "bc_live_secret" not in str(at._tree)  # nowhere in what the page sends
    # A second visitor gets an empty form too, whatever the first one typed.
    field.input("typed-by-visitor-one")
    at.run()
    other = AppTest.from_file(str(APP), default_timeout=30)
    other.run()
    assert other.text_input(key="signin_key").value == ""


def test_sign_in_code_reads_no_key_from_the_environment():
    text = (ROOT / "admin_ui" / "pages_impl" / "signin.py").read_text(encoding="utf-8")
    assert "BATCHCALLS_API_KEY" not in text and "os.environ" not in text


# --- Streamlit toolbar ---------------------------------------------------------------


def test_package_config_hides_the_developer_toolbar():
    cfg = tomllib.loads((ROOT / "admin_ui" / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert cfg["client"]["toolbarMode"] in ("viewer", "minimal")
    assert cfg["server"]["headless"] is True
    assert cfg["global"]["developmentMode"] is False


def test_streamlit_reads_the_package_config_from_any_directory(tmp_path):
    """`streamlit run admin_ui/app.py` picks up admin_ui/.streamlit/config.toml
    (script-level config) even when started from elsewhere."""
    code = (
        "from streamlit import config\n"
        f"config._main_script_path = {str(APP)!r}\n"
        "config.get_config_options(force_reparse=True)\n"
        "print(config.get_option('client.toolbarMode'), config.get_option('server.headless'),"
        " config.get_option('global.developmentMode'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env["HOME"] = str(tmp_path)  # no user-level config
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.split() == ["viewer", "True", "False"]


def test_launcher_passes_the_toolbar_mode():
    from launcher.cli import ui_command

    cmd = ui_command(8501)
    flags = dict(itertools.pairwise(cmd))
    assert flags["--client.toolbarMode"] in ("viewer", "minimal")
    assert flags["--server.headless"] == "true"
    assert flags["--global.developmentMode"] == "false"
