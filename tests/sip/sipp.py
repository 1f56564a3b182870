"""Start and stop a sipp UAS (a fake SIP trunk) on loopback; read its statistics.

Reusable by the end-to-end tests::

    from tests.sip.sipp import start_sipp, NUMBERS

    sipp = start_sipp("trunk_uas.xml", "udp")      # free port on 127.0.0.1
    ...  # place calls to sipp.host:sipp.port, to NUMBERS["completed"] etc.
    sipp.wait_idle()                               # every call sipp saw has ended
    sipp.stop()
    st = sipp.stats()
    assert st.invites == n_calls and st.unexpected == 0

The scenario ``scenarios/trunk_uas.xml`` picks the behaviour from the dialed
number (all valid US numbers for ``phonenumbers``):

=============  =================================================  ===============
number         trunk behaviour                                    SipProvider outcome
=============  =================================================  ===============
+14155550100   100, 180, 200; the callee sends BYE after ~1 s      completed
+14155550101   100, 180, 200; holds until our BYE                  completed (max duration)
+14155550102   100, 180, never answers; CANCEL -> 200 + 487        no_answer (487)
+14155550103   no response at all                                  timeout (Timer B)
+14155550104   401 qop=auth challenge; verifyauth; then as 0100    completed (403 if bad password)
+14155550105   407 qop=auth challenge; then as 0100                completed
+14155550106   100 only; ignores our CANCEL                        timeout (nothing after CANCEL)
+14155550486   180, 486                                            busy
+14155550600   180, 600                                            busy
+14155550480   180, 480                                            no_answer
+14155550408   180, 408                                            no_answer
+14155550404   180, 404 (also any number not in this table)        invalid_number
+14155550484   180, 484                                            invalid_number
+14155550604   180, 604                                            invalid_number
+14155550403   180, 403                                            blocked
+14155550603   180, 603                                            blocked
+14155550503   180, 503                                            carrier_error
+14155550513   503 + Retry-After: 2 at once (CPS push-back)        refused: push-back
+14155550500   180, 500                                            carrier_error
=============  =================================================  ===============

Digest credentials the scenario accepts: ``SIPP_USERNAME`` / ``SIPP_PASSWORD``.

How sipp runs (one process per ``start_sipp``, in its own temp directory)::

    sipp -sf trunk_uas.xml -i 127.0.0.1 -p PORT -t u1|t1 -nostdin -d SILENT_MS
         -trace_stat -stf stat.csv -fd 1 -trace_counts -trace_logs -log_file calls.log
         -trace_err -error_file errors.log -max_socket 4096

The voice agent leg (``tests/integration/test_sip_agent_leg.py``) runs two
of them: ``callee_uas_media.xml`` (the carrier and callee: answers an
offerless INVITE with an SDP offer, plays sipp's g711a.pcap once the ACK
brings the answer; ``CALLEE_NUMBERS``) started with ``media_ip="127.0.0.1"``,
and ``agent_uas.xml`` (the agent: its answer names ``keys={"rtp_port": N}``,
a UDP receiver of the test; behaviour by Request-URI user) started with
``trace_msg=True`` so every header it received can be read back with
``received_requests("INVITE")``.

Statistics come from three files sipp writes: the ``-trace_stat`` CSV
(TotalCallCreated, CurrentCall each second, Successful/Failed), the
``-trace_counts`` CSV (per scenario step: messages received, retransmitted,
unexpected, sent) and the ``<log>`` lines of the scenario (START / AUTH /
ANSWER / END per Call-ID with sipp's clock in ms), from which the exact peak
of concurrent calls is computed. The CSVs are complete after ``stop()``.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.support.helpers import free_port

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_USERNAME = "trunkuser"
SIPP_PASSWORD = "trunk-secret"
#: Digest credentials agent_uas.xml accepts (Request-URI user "auth").
AGENT_USERNAME = "agentuser"
AGENT_PASSWORD = "agent-secret"
#: callee_uas_media.xml: the dialed number picks the callee's behaviour.
CALLEE_NUMBERS = {
    "hold": "+14155550200",  # plays the pcap, holds until our BYE
    "hangup": "+14155550201",  # plays the pcap, hangs up 2 s after the ACK
    # +14155550210 .. +14155550219 behave as "hangup" (distinct numbers for a batch).
    "abandon": "+14155550202",  # hangs up 1 s after its 200, before our ACK
}

NUMBERS = {
    "completed": "+14155550100",
    "hold": "+14155550101",
    "ring_forever": "+14155550102",
    "silent": "+14155550103",
    "auth401": "+14155550104",
    "auth407": "+14155550105",
    "ignore_cancel": "+14155550106",
    "busy": "+14155550486",
    "busy_everywhere": "+14155550600",
    "unavailable": "+14155550480",
    "request_timeout": "+14155550408",
    "not_found": "+14155550404",
    "address_incomplete": "+14155550484",
    "does_not_exist": "+14155550604",
    "forbidden": "+14155550403",
    "decline": "+14155550603",
    "service_unavailable": "+14155550503",
    "server_error": "+14155550500",
}


def sipp_binary() -> str | None:
    return shutil.which("sipp")


def _port_taken(port: int, transport: str) -> bool:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@dataclass
class CallRecord:
    call_id: str
    number: str
    start_ms: int
    answer_ms: int | None = None
    end_ms: int | None = None
    end: str = ""  # answered | cancelled | rejected | silent
    auth: list[str] = field(default_factory=list)
    # callee_uas_media.xml: the m=audio port of the answer in our ACK, and
    # whether that answer was a=inactive (no agent to bridge to: no media).
    media_port: int | None = None
    media_inactive: bool = False
    # From the INVITE: from=<From user part>, batch=, contact=, agent=, attempt= (X- headers).
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TracedMessage:
    """One message of sipp's -trace_msg file."""

    time: float  # epoch seconds, from sipp's wall clock (comparable across sipp processes)
    direction: str  # "received" | "sent"
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()


@dataclass
class SippStats:
    # From -trace_stat (last row).
    total_calls: int = 0
    successful_calls: int = 0
    failed_calls: int = 0
    failed_unexpected: int = 0
    failed_tcp_closed: int = 0  # the caller closed its TCP connection while sipp's call had steps left
    current_calls: int = 0
    peak_current_calls: int = 0  # max of the per-second CurrentCall samples
    retransmissions: int = 0
    # From -trace_counts (last row), summed over scenario steps.
    received: dict[str, int] = field(default_factory=dict)  # "INVITE" -> n (retransmissions excluded)
    retransmitted: dict[str, int] = field(default_factory=dict)  # received retransmissions by method
    sent: dict[str, int] = field(default_factory=dict)  # "200", "487", "BYE" -> n
    unexpected: int = 0
    # From the scenario's <log> lines.
    calls: dict[str, CallRecord] = field(default_factory=dict)
    peak_concurrent: int = 0  # exact, from START/END times

    @property
    def invites(self) -> int:
        return self.received.get("INVITE", 0)

    @property
    def cancels(self) -> int:
        return self.received.get("CANCEL", 0)

    @property
    def byes_received(self) -> int:
        return self.received.get("BYE", 0)

    @property
    def byes_sent(self) -> int:
        return self.sent.get("BYE", 0)

    @property
    def acks(self) -> int:
        return self.received.get("ACK", 0)


class SippProcess:
    def __init__(
        self,
        scenario: str,
        transport: str,
        port: int,
        silent_ms: int,
        extra_args: list[str],
        trace_msg: bool = False,
    ) -> None:
        binary = sipp_binary()
        if binary is None:
            raise FileNotFoundError("sipp is not on PATH (Debian: apt-get install sip-tester)")
        self.transport = transport.lower()
        if self.transport not in ("udp", "tcp"):
            raise ValueError("transport is udp or tcp")
        self.host = "127.0.0.1"
        self.workdir = Path(tempfile.mkdtemp(prefix="sipp-"))
        src = Path(scenario)
        if not src.is_absolute() and not src.exists():
            src = SCENARIOS / scenario
        self.scenario = self.workdir / src.name
        shutil.copy(src, self.scenario)
        self.stat_file = self.workdir / "stat.csv"
        self.log_file = self.workdir / "calls.log"
        self.error_file = self.workdir / "errors.log"
        self.stdout_file = self.workdir / "stdout.txt"
        self.message_file = self.workdir / "messages.log"
        if trace_msg:
            extra_args = [*extra_args, "-trace_msg", "-message_file", str(self.message_file)]
        last_err = ""
        for attempt in range(5):
            self.port = port or free_port()
            self.args = [
                binary, "-sf", str(self.scenario),
                "-i", self.host, "-p", str(self.port),
                "-t", "u1" if self.transport == "udp" else "t1",
                "-nostdin",
                "-d", str(silent_ms),
                "-trace_stat", "-stf", str(self.stat_file), "-fd", "1",
                "-trace_counts",
                "-trace_logs", "-log_file", str(self.log_file),
                "-trace_err", "-error_file", str(self.error_file),
                "-max_socket", "4096",
                *extra_args,
            ]  # fmt: skip
            self._out = open(self.stdout_file, "wb")
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if _port_taken(self.port, self.transport) and self.log_file.exists():
                    return
                time.sleep(0.02)
            rc = self.proc.poll()
            self._out.close()
            last_err = self.stdout_file.read_text(errors="replace")[-2000:]
            if rc is None:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"sipp did not start listening on {self.port}: {last_err}")
            if port:  # a fixed port that is busy: do not retry elsewhere
                break
        raise RuntimeError(f"sipp failed to start: {last_err}")

    @property
    def command_line(self) -> str:
        return " ".join(self.args)

    # -- lifecycle -----------------------------------------------------
    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Waits until every call sipp logged as started has ended.

        END is logged with the call's last received message; sipp then still
        runs the call's last (empty) steps, so this waits a little more before
        returning: a caller closing its TCP connection right away would
        otherwise make sipp count the call as failed ("TCP closed").
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self._read_logs()
            if all(c.end_ms is not None for c in calls.values()):
                time.sleep(0.3)
                # Under load sipp may still be running a call's last steps:
                # its own statistics (written every second) say when none is.
                settle = time.monotonic() + min(5.0, max(0.0, deadline - time.monotonic()) + 3.0)
                while time.monotonic() < settle and self.stats().current_calls:
                    time.sleep(0.2)
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 10.0) -> int:
        """Stops sipp (SIGTERM, then SIGKILL) and returns its exit code.

        SIGTERM lets sipp write its final statistics rows. Only this
        process is signalled.
        """
        if self.proc.poll() is None:
            time.sleep(0.2)  # let sipp run the last steps of calls that just ended
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._out.closed:
            self._out.close()
        return self.proc.returncode

    def cleanup(self) -> None:
        if self.running():
            self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SippProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- statistics ----------------------------------------------------
    def errors(self) -> str:
        return self.error_file.read_text(errors="replace") if self.error_file.exists() else ""

    def output(self) -> str:
        return self.stdout_file.read_text(errors="replace") if self.stdout_file.exists() else ""

    def _read_logs(self) -> dict[str, CallRecord]:
        calls: dict[str, CallRecord] = {}
        if not self.log_file.exists():
            return calls
        for line in self.log_file.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) < 3 or not parts[0].isdigit():
                continue
            ms, kind, call_id = int(parts[0]), parts[1], parts[2]
            if kind == "START":
                calls.setdefault(call_id, CallRecord(call_id, parts[3] if len(parts) > 3 else "", ms))
            elif call_id in calls:
                rec = calls[call_id]
                if kind == "ANSWER":
                    rec.answer_ms = ms
                elif kind == "HEADERS":
                    for item in parts[3:]:
                        k, eq, v = item.partition("=")
                        if eq:
                            rec.headers[k] = v
                elif kind == "MEDIA":
                    rec.media_port = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else None
                    rec.media_inactive = "a=inactive" in parts[4:]
                elif kind == "AUTH":
                    rec.auth.append(parts[3] if len(parts) > 3 else "")
                elif kind == "END":
                    rec.end_ms = ms
                    rec.end = parts[3] if len(parts) > 3 else ""
        return calls

    def traced_messages(self) -> list[TracedMessage]:
        """Every SIP message sipp sent or received, in order (``trace_msg=True``)."""
        if not self.message_file.exists():
            return []
        text = self.message_file.read_text(errors="replace")
        out: list[TracedMessage] = []
        # Each entry: a dashed line with sipp's local wall-clock time, then
        # "<TRANSPORT> message received [n] bytes :" (or "sent (n bytes):"),
        # a blank line, and the message.
        parts = re.split(r"(?m)^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n", text)
        for stamp, block in zip(parts[1::2], parts[2::2], strict=True):
            head, _, msg = block.partition("\n")
            if "message received" in head:
                direction = "received"
            elif "message sent" in head:
                direction = "sent"
            else:
                continue
            when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
            out.append(TracedMessage(when, direction, msg.strip("\n")))
        return out

    def received_messages(self) -> list[str]:
        """Every SIP message sipp received, as text (``trace_msg=True``)."""
        return [m.text for m in self.traced_messages() if m.direction == "received"]

    def message_times(self, direction: str, start: str) -> list[float]:
        """Wall-clock times (epoch s) of the messages ``direction`` ("sent"/"received")
        whose first line starts with ``start`` ("BYE", "SIP/2.0 200", ...)."""
        return [m.time for m in self.traced_messages() if m.direction == direction and m.first_line.startswith(start)]

    def received_requests(self, method: str) -> list[dict[str, list[str]]]:
        """Headers of each received request of ``method``: lower-cased name -> values."""
        out: list[dict[str, list[str]]] = []
        for msg in self.received_messages():
            lines = msg.replace("\r\n", "\n").split("\n")
            if not lines or not lines[0].startswith(method + " "):
                continue
            headers: dict[str, list[str]] = {"": [lines[0]]}
            for line in lines[1:]:
                if not line.strip():
                    break
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), []).append(value.strip())
            out.append(headers)
        return out

    @staticmethod
    def _last_rows(path: Path) -> list[dict[str, str]]:
        if not path.exists():
            return []
        with open(path, newline="") as f:
            return [row for row in csv.DictReader(f, delimiter=";") if row]

    def stats(self) -> SippStats:
        st = SippStats()
        rows = self._last_rows(self.stat_file)
        if rows:
            last = rows[-1]

            def num(key: str, row: dict[str, str] = last) -> int:
                try:
                    return int(float(row.get(key, "0") or 0))
                except ValueError:
                    return 0

            st.total_calls = num("TotalCallCreated")
            st.successful_calls = num("SuccessfulCall(C)")
            st.failed_calls = num("FailedCall(C)")
            st.failed_unexpected = num("FailedUnexpectedMessage(C)")
            st.failed_tcp_closed = num("FailedTcpClosed(C)")
            st.current_calls = num("CurrentCall")
            st.retransmissions = num("Retransmissions(C)")
            st.peak_current_calls = max(num("CurrentCall", r) for r in rows)
        counts = sorted(self.workdir.glob("*_counts.csv"))
        if counts:
            crows = self._last_rows(counts[-1])
            if crows:
                last = crows[-1]
                for key, value in last.items():
                    m = re.fullmatch(r"(\d+)_([A-Za-z0-9]+)_(Recv|Retrans|Timeout|Unexp|Sent)", key or "")
                    if not m:
                        continue
                    try:
                        n = int(value or 0)
                    except ValueError:
                        continue
                    what, kind = m.group(2), m.group(3)
                    if kind == "Recv":
                        st.received[what] = st.received.get(what, 0) + n
                    elif kind == "Sent":
                        st.sent[what] = st.sent.get(what, 0) + n
                    elif kind == "Retrans" and not what.isdigit():
                        st.retransmitted[what] = st.retransmitted.get(what, 0) + n
                    elif kind == "Unexp":
                        st.unexpected += n
        st.calls = self._read_logs()
        events: list[tuple[int, int]] = []
        for rec in st.calls.values():
            events.append((rec.start_ms, 1))
            if rec.end_ms is not None:
                events.append((rec.end_ms, -1))
        cur = 0
        for _, d in sorted(events, key=lambda e: (e[0], e[1])):
            cur += d
            st.peak_concurrent = max(st.peak_concurrent, cur)
        return st


def start_sipp(
    scenario: str = "trunk_uas.xml",
    transport: str = "udp",
    port: int = 0,
    *,
    silent_ms: int = 5000,
    extra_args: list[str] | None = None,
    media_ip: str = "",
    keys: dict[str, str | int] | None = None,
    trace_msg: bool = False,
) -> SippProcess:
    """Starts sipp as a UAS on 127.0.0.1 (a free port unless ``port``).

    ``silent_ms``: how long the "no response" numbers keep their call (sipp's
    -d); keep it longer than the caller's Timer B so retransmitted INVITEs
    stay in the same sipp call. ``media_ip``: sipp's -mi, the address of
    ``[media_ip]`` in its SDP and of its RTP sockets (sipp picks a free
    ``[media_port]`` from 6000 up). ``keys``: ``-key name value`` for each,
    ``[name]`` in the scenario. ``trace_msg``: log every message (-trace_msg)
    for ``received_requests``.
    """
    args = list(extra_args or [])
    if media_ip:
        args += ["-mi", media_ip]
    for name, value in (keys or {}).items():
        args += ["-key", name, str(value)]
    return SippProcess(scenario, transport, port, silent_ms, args, trace_msg=trace_msg)


def require_sipp() -> str | None:
    """The reason to skip sipp tests, or None. Under CI=true sipp is required."""
    if sipp_binary() is not None:
        return None
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError("CI=true and sipp is not on PATH: install it (Debian: apt-get install sip-tester)")
    return "sipp is not on PATH (Debian: apt-get install sip-tester); set CI=true to make this a failure"
