"""Replies delivered through a relay as an operator has one: TLS, a login, refusals.

Every test talks to real aiosmtpd on 127.0.0.1 (tests/support/smtp_tls.py)
with a certificate signed by a CA the test made: STARTTLS required (587
style) or TLS from the first byte (465 style), and a login required.
"""

from __future__ import annotations

import argparse
from email.message import EmailMessage
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.mail import smtp
from harness.mail.smtp import PasswordSource, RetryPolicy, SendFailed, SmtpRelay, TlsMode
from tests.support.smtp_tls import Ca, TlsSmtpSink, make_ca

# aiosmtpd warns when a login is accepted without STARTTLS: its implicit-TLS sink (TLS from
# the first byte) is such a server, and it is the one place a login goes without STARTTLS
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

USER, PASSWORD = "bot@example.org", "s3cret pass phrase"


@pytest.fixture
def ca(tmp_path: Path) -> Ca:
    return make_ca(tmp_path / "ca")


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "smtp-password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def _message(to: str = "list@example.org", cc: tuple[str, ...] = ()) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "kharness <bot@example.org>"
    m["To"] = to
    if cc:
        m["Cc"] = ", ".join(cc)
    m["Subject"] = "Re: [PATCH 0/2] mm: a series"
    m.set_content("tested\n")
    return m


def _relay(sink: TlsSmtpSink, mode: TlsMode, **kw: object) -> SmtpRelay:
    return SmtpRelay("127.0.0.1", sink.port, mode, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_and_login_with_a_password_file_is_accepted(
    ca: Ca, password_file: Path, mechanism: str
) -> None:
    with TlsSmtpSink(ca, "starttls", USER, PASSWORD, mechanisms=(mechanism,)) as sink:
        relay = _relay(sink, TlsMode.STARTTLS, user=USER, ca=ca.ca_pem)
        relay = SmtpRelay(**{**relay.__dict__, "password": PasswordSource(password_file)})
        done = smtp.deliver(_message(cc=("a@example.org",)), relay)
        assert done.accepted == ("list@example.org", "a@example.org")
        assert [m["Subject"] for m in sink.messages] == ["Re: [PATCH 0/2] mm: a series"]
        assert sink.login.mechanisms == [mechanism]
        assert PASSWORD not in repr(relay) and PASSWORD not in str(relay)


def test_implicit_tls_with_the_password_from_the_environment(
    ca: Ca, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(smtp.PASSWORD_ENV, PASSWORD)
    with TlsSmtpSink(ca, "tls", USER, PASSWORD) as sink:
        relay = _relay(sink, TlsMode.TLS, user=USER, password=PasswordSource(), ca=ca.ca_pem)
        assert smtp.send(_message(), relay) == ()
        assert len(sink.messages) == 1


def test_a_wrong_password_is_refused_with_the_relays_words(ca: Ca, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    with TlsSmtpSink(ca, "starttls", USER, PASSWORD) as sink:
        relay = _relay(
            sink, TlsMode.STARTTLS, user=USER, password=PasswordSource(wrong), ca=ca.ca_pem
        )
        with pytest.raises(SendFailed) as failed:
            smtp.deliver(_message(), relay)
        assert failed.value.refusal.code == 535
        assert "Authentication credentials invalid" in failed.value.refusal.text
        assert not failed.value.transient
        assert "refused the login" in str(failed.value) and "not it" not in str(failed.value)
        assert sink.messages == [] and sink.login.failures == 1


@pytest.mark.parametrize("mode", [TlsMode.STARTTLS, TlsMode.TLS])
def test_a_relay_of_an_unknown_ca_is_refused_unless_given_with_smtp_ca(
    ca: Ca, password_file: Path, tmp_path: Path, mode: TlsMode
) -> None:
    other = make_ca(tmp_path / "other", name="someone else's CA")
    with TlsSmtpSink(ca, mode.value, USER, PASSWORD) as sink:
        for trusted in (None, other.ca_pem):  # the system's CAs, then a CA that did not sign it
            relay = _relay(
                sink, mode, user=USER, password=PasswordSource(password_file), ca=trusted
            )
            with pytest.raises(SendFailed) as failed:
                smtp.deliver(_message(), relay)
            assert "certificate is not trusted" in str(failed.value)
            assert "--smtp-ca FILE" in str(failed.value)
            assert not failed.value.transient and failed.value.refusal.code is None
        assert sink.messages == [] and sink.login.mechanisms == []  # no password was sent
        good = _relay(sink, mode, user=USER, password=PasswordSource(password_file), ca=ca.ca_pem)
        assert smtp.send(_message(), good) == ()
        assert len(sink.messages) == 1


def test_a_busy_relay_is_retried_with_backoff_and_takes_it_then(
    ca: Ca, password_file: Path
) -> None:
    policy = RetryPolicy(first=30, cap=600, permanent_attempts=2)
    with TlsSmtpSink(ca, "starttls", USER, PASSWORD) as sink:
        relay = _relay(
            sink, TlsMode.STARTTLS, user=USER, password=PasswordSource(password_file), ca=ca.ca_pem
        )
        sink.refuse(1)
        with pytest.raises(SendFailed) as failed:
            smtp.deliver(_message(), relay)
        assert failed.value.refusal.code == 451 and failed.value.transient
        assert "try again later" in failed.value.refusal.text
        assert [policy.delay(failed.value, n) for n in (1, 2, 3, 9)] == [30, 60, 120, 600]
        assert smtp.deliver(_message(), relay).accepted == ("list@example.org",)
        assert len(sink.messages) == 1 and sink.keeper.refused == 1


def test_a_permanent_refusal_is_not_retried_forever() -> None:
    refused = SendFailed("x", smtp.Refusal(550, "5.7.1 relaying denied", transient=False))
    policy = RetryPolicy(first=10, permanent_attempts=3)
    assert [policy.delay(refused, n) for n in (1, 2, 3, 4)] == [10, 20, None, None]


def test_recipients_are_capped_to_first_to_then_cc(ca: Ca, password_file: Path) -> None:
    many = tuple(f"dev{n}@example.org" for n in range(10))
    with TlsSmtpSink(ca, "tls", USER, PASSWORD) as sink:
        relay = _relay(
            sink,
            TlsMode.TLS,
            user=USER,
            password=PasswordSource(password_file),
            ca=ca.ca_pem,
            max_recipients=3,
        )
        done = smtp.deliver(_message(cc=many), relay)
        assert done.accepted == ("list@example.org", "dev0@example.org", "dev1@example.org")
        assert done.dropped == many[2:]
        (got,) = sink.messages
        assert got["Cc"] == "dev0@example.org, dev1@example.org"  # the headers say the truth


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    smtp.add_options(parser)
    return parser.parse_args(list(argv))


def test_the_options_make_a_relay_and_refuse_unsafe_ones(
    password_file: Path, ca: Ca, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(smtp.PASSWORD_ENV, raising=False)
    assert smtp.relay_from_args(_args()) is None
    assert smtp.relay_from_args(_args("--smtp", "127.0.0.1:25")) == SmtpRelay("127.0.0.1", 25)
    relay = smtp.relay_from_args(
        _args(
            *("--smtp", "mail.example.org", "--smtp-tls", "starttls", "--smtp-user", USER),
            *("--smtp-password-file", str(password_file), "--smtp-ca", str(ca.ca_pem)),
        )
    )
    assert relay == SmtpRelay(
        "mail.example.org", 587, TlsMode.STARTTLS, USER, PasswordSource(password_file), ca.ca_pem
    )
    assert smtp.relay_from_args(_args("--smtp", "h", "--smtp-tls", "tls")).port == 465
    cases = {
        ("--smtp", "mail.example.org", "--smtp-user", USER): "in the clear",
        ("--smtp", "h", "--smtp-tls", "tls", "--smtp-user", USER): smtp.PASSWORD_ENV,
        ("--smtp-user", USER): "need --smtp",
        ("--smtp", "h", "--smtp-password-file", str(password_file)): "needs --smtp-user",
        ("--smtp", "h", "--smtp-tls", "tls", "--smtp-ca", "/nonexistent.pem"): "no such file",
    }
    for argv, words in cases.items():
        with pytest.raises(UserError, match=words):
            smtp.relay_from_args(_args(*argv))
    with pytest.raises(SystemExit):  # a password is never a command-line value
        _args("--smtp", "h", "--smtp-password", PASSWORD)
