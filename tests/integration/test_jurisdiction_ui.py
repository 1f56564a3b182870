"""The admin UI names "call at any time" and "require consent" as the
owner's explicit choices (issue 16), and saves them through the API."""

from __future__ import annotations

from tests.integration.test_admin_ui_apptest import backend, new_app, sign_in, texts  # noqa: F401
from tests.support.clocked_stack import get_org


def test_owner_chooses_any_time_and_consent_in_the_ui(backend, stack):  # type: ignore[no-untyped-def]
    keys = backend.new_org("AppTest compliance", calling_any_time=False)
    at = sign_in(new_app(), keys.owner_key)
    at.sidebar.radio[0].set_value(next(p for p in at.sidebar.radio[0].options if "Organization" in p))
    at.run()
    assert "08:00" in texts(at) and "Consent required in uploads:** no" in texts(at)
    any_time = next(c for c in at.checkbox if c.label.startswith("Call at any time"))
    assert any_time.value is False
    any_time.check()
    next(c for c in at.checkbox if "consent_at" in c.label).check()
    next(b for b in at.button if "Save settings" in b.label).click()
    at.run()
    assert not at.exception, at.exception
    o = get_org(stack, keys)
    assert o.calling_any_time and o.require_consent and not o.HasField("default_calling_window")
    assert "call at any time (owner's choice" in texts(at)
