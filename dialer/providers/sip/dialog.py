"""The UAC side of one SIP dialog (RFC 3261 §12): identifiers and routing. Pure.

A dialog is what an INVITE's 2xx creates: Call-ID, our tag, the far end's
tag, its target (the Contact of the 2xx) and the route set (the reversed
Record-Route). Every later request of the dialog (ACK of the 2xx, BYE, and
a re-INVITE should one be sent) is built from this state, so it lives
apart from the INVITE's own life (``call.py``): a call that holds two
dialogs, as third-party call control does (RFC 3725 Flow I: one to the
callee, one to the voice agent, the agent's SDP answer going to the callee
in the ACK of its 2xx), keeps one ``Dialog`` each.

No I/O here: the caller gives the Via (it depends on the flow the request
goes out on, see ``transport.Flow.via``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .message import SipRequest, SipResponse, name_addr_uri

MAX_FORWARDS = "70"


@dataclass
class Dialog:
    """Identifiers, CSeq and routing of one dialog we initiate.

    Before the 2xx it holds what the initial INVITE needs (the remote tag,
    target and route set are still empty); ``confirm`` fills them in.
    """

    call_id: str
    local_tag: str
    #: Our address of record, the From URI (without the tag).
    local_uri: str
    #: The far end's address of record, the To URI (without the tag).
    remote_uri: str
    #: Request-URI of the initial INVITE; the target until the 2xx gives one.
    request_uri: str
    #: CSeq of the last request we sent (RFC 3261 §12.2.1.1: it only grows).
    local_cseq: int
    remote_tag: str = ""
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)

    @property
    def from_header(self) -> str:
        return f"{self.local_uri};tag={self.local_tag}"

    @property
    def to_header(self) -> str:
        return f"{self.remote_uri};tag={self.remote_tag}" if self.remote_tag else self.remote_uri

    @property
    def target(self) -> str:
        return self.remote_target or self.request_uri

    def next_cseq(self) -> int:
        self.local_cseq += 1
        return self.local_cseq

    def request(self, method: str, *, uri: str, cseq: int, to: str, via: str) -> SipRequest:
        """A request with this dialog's From and Call-ID and the given rest."""
        req = SipRequest(method=method, uri=uri)
        req.add("Via", via)
        req.add("Max-Forwards", MAX_FORWARDS)
        req.add("From", self.from_header)
        req.add("To", to)
        req.add("Call-ID", self.call_id)
        req.add("CSeq", f"{cseq} {method}")
        return req

    def initial_invite(self, via: str) -> SipRequest:
        """An out-of-dialog INVITE with the next CSeq (a retry after a challenge too)."""
        return self.request("INVITE", uri=self.request_uri, cseq=self.next_cseq(), to=self.remote_uri, via=via)

    def in_dialog(self, method: str, via: str) -> SipRequest:
        """A request inside the dialog (RFC 3261 §12.2.1.1): next CSeq, remote target, route set."""
        req = self.request(method, uri=self.target, cseq=self.next_cseq(), to=self.to_header, via=via)
        for route in self.route_set:
            req.add("Route", route)
        return req

    def confirm(self, resp: SipResponse) -> None:
        """Takes the dialog state from the 2xx of the INVITE (RFC 3261 §12.1.2)."""
        self.remote_tag = resp.to_tag
        contact = resp.get("Contact")
        self.remote_target = name_addr_uri(contact) if contact else self.request_uri
        self.route_set = list(reversed(resp.get_all("Record-Route")))

    def ack_for_2xx(self, invite: SipRequest, resp: SipResponse, via: str) -> SipRequest:
        """The ACK of a 2xx (RFC 3261 §13.2.2.4): the INVITE's CSeq number, a new branch."""
        ack = self.request("ACK", uri=self.remote_target, cseq=invite.cseq[0], to=resp.get("To") or "", via=via)
        for route in self.route_set:
            ack.add("Route", route)
        return ack

    def owns(self, req: SipRequest) -> bool:
        """False when a request's To tag names another dialog than ours."""
        return not req.to_tag or req.to_tag == self.local_tag
