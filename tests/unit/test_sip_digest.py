"""Digest authentication (dialer/providers/sip/digest.py), RFC 2617 / 7616 vectors."""

from __future__ import annotations

import pytest

from dialer.providers.sip import digest


def test_rfc2617_section_3_5_example():
    # RFC 2617 §3.5: Mufasa / "Circle Of Life", qop=auth.
    assert (
        digest.compute_response(
            username="Mufasa",
            password="Circle Of Life",
            realm="testrealm@host.com",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            method="GET",
            uri="/dir/index.html",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_examples(algorithm, expected):
    assert (
        digest.compute_response(
            username="Mufasa",
            password="Circle of Life",
            realm="http-auth@example.org",
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            method="GET",
            uri="/dir/index.html",
            algorithm=algorithm,
            qop="auth",
            nc="00000001",
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        )
        == expected
    )


def test_rfc2069_form_without_qop():
    # HA1 = MD5(user:realm:pass), HA2 = MD5(method:uri), resp = MD5(HA1:nonce:HA2)
    import hashlib

    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    ha1 = md5("alice:trunk:pw")
    ha2 = md5("INVITE:sip:+14155550100@h:5060;transport=udp")
    assert digest.compute_response(
        username="alice", password="pw", realm="trunk", nonce="n1", method="INVITE",
        uri="sip:+14155550100@h:5060;transport=udp",
    ) == md5(f"{ha1}:n1:{ha2}")


def test_parse_challenge():
    ch = digest.parse_challenge(
        'Digest realm="trunk.test", nonce="abc,def", qop="auth,auth-int", algorithm=MD5, opaque="o1", stale=TRUE'
    )
    assert ch.realm == "trunk.test" and ch.nonce == "abc,def"
    assert ch.qop_options == ("auth", "auth-int")
    assert ch.opaque == "o1" and ch.stale is True and ch.algorithm == "MD5"


def test_parse_challenge_refuses_other_schemes():
    with pytest.raises(digest.DigestError):
        digest.parse_challenge('Basic realm="x"')


def test_authorization_header_with_qop_and_opaque():
    ch = digest.parse_challenge('Digest realm="r", nonce="n", qop="auth", opaque="op"')
    value = digest.authorization(ch, username="u", password="p", method="INVITE", uri="sip:x@y", nc=2, cnonce="c0")
    params = digest.parse_auth_params(value.removeprefix("Digest "))
    assert params["username"] == "u" and params["nc"] == "00000002" and params["cnonce"] == "c0"
    assert params["qop"] == "auth" and params["opaque"] == "op" and params["uri"] == "sip:x@y"
    assert params["response"] == digest.compute_response(
        username="u", password="p", realm="r", nonce="n", method="INVITE", uri="sip:x@y",
        qop="auth", nc="00000002", cnonce="c0",
    )
    assert "p" not in value.split("response=")[0].split("username=")[0]


def test_md5_sess():
    ch = digest.parse_challenge('Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess')
    value = digest.authorization(ch, username="u", password="p", method="BYE", uri="sip:x", cnonce="cc")
    assert "algorithm=MD5-sess" in value and 'cnonce="cc"' in value


def test_auth_int_only_is_refused():
    ch = digest.parse_challenge('Digest realm="r", nonce="n", qop="auth-int"')
    with pytest.raises(digest.DigestError):
        digest.authorization(ch, username="u", password="p", method="INVITE", uri="sip:x")


def test_unknown_algorithm_is_refused():
    ch = digest.parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-1')
    with pytest.raises(digest.DigestError):
        digest.authorization(ch, username="u", password="p", method="INVITE", uri="sip:x")
