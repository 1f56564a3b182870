"""Answering digest challenges on a leg's requests (RFC 3261 §22.2).

``digest.py`` computes the answer; this module reads the challenge off a
401/407, keeps the nonce counts, and puts the answer in the right header.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import digest
from .message import SipRequest, SipResponse

# The challenge header of each status, and the header that answers it.
_CHALLENGE_HEADER = {401: "WWW-Authenticate", 407: "Proxy-Authenticate"}
_ANSWER_HEADER = {"WWW-Authenticate": "Authorization", "Proxy-Authenticate": "Proxy-Authorization"}


@dataclass(frozen=True)
class Credentials:
    """A trunk's digest credentials; the password stays out of reprs and logs (docs/design.md §7)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class PendingChallenge:
    """A challenge we can answer, with the header it came in."""

    header: str
    challenge: digest.Challenge

    @property
    def stale(self) -> bool:
        return self.challenge.stale


class Authenticator:
    """Digest state of one leg: its credentials, nonce counts, last answer."""

    def __init__(self, credentials: Credentials | None) -> None:
        self.credentials = credentials
        self._nonce_counts: dict[str, int] = {}
        #: (answer header name, value) of the last authorized request: the
        #: ACK of a 2xx carries the INVITE's credentials.
        self.last_answer: tuple[str, str] | None = None

    def challenge_in(self, resp: SipResponse) -> PendingChallenge | None:
        """The first challenge of a 401/407 we can answer; None without credentials."""
        if self.credentials is None:
            return None
        header = _CHALLENGE_HEADER.get(resp.status)
        if header is None:
            return None
        for value in resp.get_all(header):
            try:
                challenge = digest.parse_challenge(value)
            except digest.DigestError:
                continue
            if digest.can_answer(challenge):
                return PendingChallenge(header, challenge)
        return None

    def authorize(self, req: SipRequest, pending: PendingChallenge) -> None:
        """Adds the answer to ``pending`` to ``req`` (nc counts per nonce)."""
        assert self.credentials is not None
        challenge = pending.challenge
        nc = self._nonce_counts.get(challenge.nonce, 0) + 1
        self._nonce_counts[challenge.nonce] = nc
        value = digest.authorization(
            challenge,
            username=self.credentials.username,
            password=self.credentials.password,
            method=req.method,
            uri=req.uri,
            nc=nc,
        )
        name = _ANSWER_HEADER[pending.header]
        req.set(name, value)
        self.last_answer = (name, value)
