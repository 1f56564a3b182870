import io
import json
import logging

from dialer.logging import configure_logging, log_event, mask_text


def test_json_lines_with_masked_phone_numbers():
    buf = io.StringIO()
    configure_logging("DEBUG", stream=buf)
    log = logging.getLogger("dialer.test")
    log_event(log, "call.placed", to="+12025550123", contact_id="c1", attempt_number=2,
              detail="calling +12025550199 now", msg="clash")
    logging.getLogger().handlers[-1].flush()
    line = buf.getvalue().strip().splitlines()[-1]
    rec = json.loads(line)
    assert rec["msg"] == "call.placed" and rec["level"] == "INFO" and rec["logger"] == "dialer.test"
    assert rec["to"] == "+1202555••23"
    assert rec["detail"] == "calling +1202555••99 now"
    assert rec["contact_id"] == "c1" and rec["attempt_number"] == 2
    assert rec["msg_"] == "clash"
    assert "2025550123" not in line and "2025550199" not in line


def test_mask_text_leaves_other_numbers():
    assert mask_text("token 12345 and +4915112345678") == "token 12345 and " + mask_text("+4915112345678")
    assert "12345678" not in mask_text("+4915112345678")
