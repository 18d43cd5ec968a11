"""Sending a reply through an SMTP relay: one place that talks SMTP, with clear failures.

A local relay on 127.0.0.1 takes mail in the clear; a real operator's relay
wants TLS (STARTTLS on 587, or TLS from the first byte on 465) and a login.
:class:`SmtpRelay` says which, and where the password is read from (a file
or ``$KHARNESS_SMTP_PASSWORD``): never the password itself, so a relay may be
logged, shown and kept in the results without leaking it.  The certificate
is always verified, against the system's CAs or ``--smtp-ca FILE``.

A refusal (4xx or 5xx), a relay that is not there, a certificate that is not
trusted: all end as :class:`SendFailed` carrying a :class:`Refusal` (the
relay's code and words, and whether trying again can help).  The caller
keeps the reply (it is a file in the results directory before any sending)
and asks :class:`RetryPolicy` when to try again: a busy relay (4xx, no
answer) is retried with a doubling delay, a permanent refusal (5xx, a bad
password, an untrusted certificate) only a few times, then recorded.

Replies go to the addresses of a thread written by strangers; ``max_recipients``
caps them (To first, then Cc), so a message with a thousand Cc's cannot
turn the bot into a spammer.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from enum import Enum
from pathlib import Path

from harness.errors import InfraError, UserError

_TIMEOUT = 60.0
PASSWORD_ENV = "KHARNESS_SMTP_PASSWORD"
DEFAULT_MAX_RECIPIENTS = 50
_SAID_LIMIT = 500  # characters of a relay's answer kept


class TlsMode(Enum):
    """How the connection to the relay is protected."""

    PLAIN = "plain"  # no TLS: a relay on this machine
    STARTTLS = "starttls"  # plain, then STARTTLS before anything else (port 587)
    TLS = "tls"  # TLS from the first byte (port 465, "implicit TLS")

    @property
    def default_port(self) -> int:
        """The port a relay of this kind listens on when none is given."""
        return {TlsMode.PLAIN: 25, TlsMode.STARTTLS: 587, TlsMode.TLS: 465}[self]


@dataclass(frozen=True)
class PasswordSource:
    """Where the login password is read, at each connection: a file, else the environment.

    Only the place is kept, so printing a relay never prints its password.
    """

    file: Path | None = None
    env: str = PASSWORD_ENV

    def read(self) -> str:
        """The password; UserError naming the place when there is none."""
        if self.file is not None:
            try:
                text = self.file.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise UserError(
                    f"--smtp-password-file {self.file}: cannot read it ({exc}); give a "
                    "readable file holding the password on its first line"
                ) from None
            password = text.splitlines()[0] if text.strip() else ""
            if not password:
                raise UserError(f"--smtp-password-file {self.file} is empty")
            return password
        password = os.environ.get(self.env, "")
        if not password:
            raise UserError(
                f"--smtp-user needs a password: put it in a file given with "
                f"--smtp-password-file FILE, or in ${self.env}"
            )
        return password

    def __str__(self) -> str:
        return f"file {self.file}" if self.file is not None else f"${self.env}"


@dataclass(frozen=True)
class SmtpRelay:
    """Where replies go, how the connection is protected, and the login."""

    host: str
    port: int
    tls: TlsMode = TlsMode.PLAIN
    user: str | None = None
    password: PasswordSource | None = None  # where it is read; with ``user`` only
    ca: Path | None = None  # a CA file to trust instead of the system's (a self-signed relay)
    max_recipients: int = DEFAULT_MAX_RECIPIENTS

    def __str__(self) -> str:
        mode = "" if self.tls is TlsMode.PLAIN else f" ({self.tls.value})"
        return f"{self.host}:{self.port}{mode}"

    def check(self) -> None:
        """Every setting sound, the password readable; UserError naming the fix otherwise."""
        if self.max_recipients < 1:
            raise UserError(f"--smtp-max-recipients {self.max_recipients}: give 1 or more")
        if self.ca is not None and not self.ca.is_file():
            raise UserError(f"--smtp-ca {self.ca}: no such file; give the relay's CA (PEM)")
        if self.ca is not None and self.tls is TlsMode.PLAIN:
            raise UserError("--smtp-ca needs --smtp-tls starttls or tls")
        if self.user is None:
            return
        if self.tls is TlsMode.PLAIN and not _loopback(self.host):
            raise UserError(
                f"--smtp-user over a plain connection to {self.host} would send the password "
                "in the clear; add --smtp-tls starttls (port 587) or --smtp-tls tls (port 465)"
            )
        (self.password or PasswordSource()).read()

    def context(self) -> ssl.SSLContext:
        """The TLS context: certificates and host names verified, always."""
        try:
            return ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"--smtp-ca {self.ca}: not a PEM certificate file ({exc})") from None


#: the name kept for callers written when a relay was only a host and a port
Server = SmtpRelay


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_server(text: str, tls: TlsMode = TlsMode.PLAIN) -> SmtpRelay:
    """'HOST:PORT' (or 'HOST', the mode's port); UserError naming the form otherwise."""
    host, _sep, port = text.strip().rpartition(":")
    if not _sep:
        host, port = text.strip(), str(tls.default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--smtp {text!r}: give HOST:PORT, e.g. --smtp 127.0.0.1:25")
    return SmtpRelay(host, int(port), tls)


@dataclass(frozen=True)
class Refusal:
    """What the relay (or the way to it) said: its code, its words, and whether to try again."""

    code: int | None  # the SMTP reply code; None when no relay answered (network, TLS)
    text: str
    transient: bool  # a 4xx or no answer: the same message may go through later

    def __str__(self) -> str:
        return f"{self.code} {self.text}" if self.code is not None else self.text


class SendFailed(InfraError):
    """The relay did not take the reply; ``refusal`` says what it said."""

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message)
        self.refusal = refusal

    @property
    def transient(self) -> bool:
        """Whether trying again later can help (a busy relay, not a refused login)."""
        return self.refusal.transient


@dataclass(frozen=True)
class Delivery:
    """What one sending did: who the relay took, refused, and who the cap left out."""

    accepted: tuple[str, ...]
    refused: tuple[tuple[str, Refusal], ...] = ()  # recipients refused while others were taken
    dropped: tuple[str, ...] = ()  # over ``max_recipients``: not sent to


@dataclass(frozen=True)
class RetryPolicy:
    """When a reply that was not sent is tried again (None: given up, kept as failed).

    Transient failures are retried with a doubling delay up to ``cap`` for as
    long as they last; a permanent refusal ``permanent_attempts`` times in all
    (the operator may fix a password in the meantime), then never again.
    """

    first: float = 60.0
    cap: float = 3600.0
    permanent_attempts: int = 3

    def delay(self, failure: SendFailed, attempts: int) -> float | None:
        """Seconds until the next try after ``attempts`` failed ones (>= 1)."""
        if not failure.transient and attempts >= self.permanent_attempts:
            return None
        return min(self.first * 2 ** max(attempts - 1, 0), self.cap)


def recipients(message: EmailMessage) -> list[str]:
    """The message's To then Cc addresses, each once, in order."""
    found: dict[str, None] = {}
    for header in ("To", "Cc"):
        for _name, address in getaddresses([str(v) for v in message.get_all(header, [])]):
            if "@" in address:
                found.setdefault(address, None)
    return list(found)


def capped(message: EmailMessage, limit: int) -> tuple[EmailMessage, tuple[str, ...]]:
    """``message`` for its first ``limit`` recipients (To, then Cc), and the ones left out.

    The headers are rewritten too, so nobody is shown as having got it who did not.
    """
    wanted = recipients(message)
    if len(wanted) <= limit:
        return message, ()
    keep = set(wanted[:limit])
    copy = EmailMessage(policy=message.policy)
    copy.set_payload(message.get_payload())
    for name, value in message.items():
        if name.lower() in ("to", "cc"):
            kept = [f"{n} <{a}>" if n else a for n, a in getaddresses([str(value)]) if a in keep]
            if kept:
                copy[name] = ", ".join(kept)
            continue
        copy[name] = value
    return copy, tuple(wanted[limit:])


def deliver(message: EmailMessage, relay: SmtpRelay) -> Delivery:
    """Send ``message`` to its To and Cc (capped); SendFailed with the relay's words when not."""
    message, dropped = capped(message, relay.max_recipients)
    password = (relay.password or PasswordSource()).read() if relay.user else None
    try:
        with _connect(relay) as client:
            if relay.user is not None and password is not None:
                _login(client, relay, password)
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        answers = [_refusal(code, said) for code, said in exc.recipients.values()]
        refusal = Refusal(
            answers[0].code if answers else None,
            "; ".join(f"{r}: {a}" for r, a in zip(exc.recipients, answers, strict=True)),
            transient=bool(answers) and all(a.transient for a in answers),
        )
        raise SendFailed(
            f"SMTP relay {relay} refused every recipient: {refusal}", refusal
        ) from None
    except smtplib.SMTPResponseException as exc:
        refusal = _refusal(exc.smtp_code, exc.smtp_error)
        what = "the login" if isinstance(exc, smtplib.SMTPAuthenticationError) else "the reply"
        hint = "; check --smtp-user and the password" if what == "the login" else ""
        raise SendFailed(f"SMTP relay {relay} refused {what}: {refusal}{hint}", refusal) from None
    except ssl.SSLCertVerificationError as exc:
        said = exc.verify_message or str(exc)
        refusal = Refusal(None, f"certificate not trusted: {said}", transient=False)
        raise SendFailed(
            f"SMTP relay {relay}: its TLS certificate is not trusted ({said}); if the relay uses "
            "its own CA, give it with --smtp-ca FILE",
            refusal,
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        refusal = Refusal(None, str(exc), transient=False)
        raise SendFailed(
            f"SMTP relay {relay}: {exc}; use --smtp-tls tls for a relay that speaks TLS from "
            "the start (port 465), or plain for one without TLS",
            refusal,
        ) from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        refusal = Refusal(None, _bounded(str(exc) or type(exc).__name__), transient=True)
        raise SendFailed(
            f"could not send the reply through {relay}: {refusal}; check --smtp, --smtp-tls "
            "and that the relay accepts mail from this host",
            refusal,
        ) from None
    taken = [r for r in recipients(message) if r not in refused]
    return Delivery(
        accepted=tuple(taken),
        refused=tuple((r, _refusal(code, said)) for r, (code, said) in refused.items()),
        dropped=dropped,
    )


def send(message: EmailMessage, server: SmtpRelay) -> tuple[str, ...]:
    """Deliver ``message``; the recipients it did not reach (refused, or over the cap).

    The mail went out to the others, so it is not sent again (those would get it twice).
    """
    done = deliver(message, server)
    return tuple(r for r, _ in done.refused) + done.dropped


def _connect(relay: SmtpRelay) -> smtplib.SMTP:
    """A connected client, TLS started as the relay's mode says (before any login)."""
    if relay.tls is TlsMode.TLS:
        return smtplib.SMTP_SSL(relay.host, relay.port, timeout=_TIMEOUT, context=relay.context())
    client = smtplib.SMTP(relay.host, relay.port, timeout=_TIMEOUT)
    try:
        if relay.tls is TlsMode.STARTTLS:
            client.starttls(context=relay.context())
    except BaseException:
        client.close()
        raise
    return client


def _login(client: smtplib.SMTP, relay: SmtpRelay, password: str) -> None:
    """One login with the first of PLAIN, LOGIN the relay offers (smtplib's ``login`` would
    try the same wrong password once per mechanism, and a relay counts each)."""
    client.ehlo_or_helo_if_needed()
    offered = client.esmtp_features.get("auth", "").upper().split()
    client.user, client.password = relay.user or "", password
    for name, answer in (("PLAIN", client.auth_plain), ("LOGIN", client.auth_login)):
        if name in offered:
            client.auth(name, answer)
            return
    said = " ".join(offered) or "none"
    raise SendFailed(
        f"SMTP relay {relay} offers no login this bot can use (AUTH: {said}; PLAIN or LOGIN "
        "wanted); leave out --smtp-user if the relay needs none",
        Refusal(None, f"AUTH mechanisms offered: {_bounded(said)}", transient=False),
    )


def _refusal(code: int, said: bytes | str) -> Refusal:
    text = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
    return Refusal(code, _bounded(text), transient=400 <= code < 500)


def _bounded(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SAID_LIMIT else text[:_SAID_LIMIT] + "..."


class _NoPassword(argparse.Action):
    """``--smtp-password`` is refused, not taken for an abbreviation of --smtp-password-file."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kw: object) -> None:
        parser.error(
            "--smtp-password: a password on the command line is seen by every user of this "
            f"machine (ps) and kept in shell history; use --smtp-password-file FILE or "
            f"${PASSWORD_ENV}"
        )


def add_options(parser: argparse.ArgumentParser) -> None:
    """The relay's options (``--smtp`` and its TLS, login, CA and cap), for any subcommand."""
    g = parser.add_argument_group("sending replies (SMTP)")
    g.add_argument("--smtp", metavar="HOST[:PORT]", help="send replies through this SMTP relay")
    g.add_argument(
        "--smtp-tls",
        choices=[m.value for m in TlsMode],
        default=TlsMode.PLAIN.value,
        help="plain (default, a relay on this machine), starttls (port 587) or tls (465)",
    )
    g.add_argument("--smtp-user", metavar="NAME", help="log in to the relay as NAME")
    g.add_argument("--smtp-password", action=_NoPassword, help=argparse.SUPPRESS)
    g.add_argument(
        "--smtp-password-file",
        metavar="FILE",
        help=f"the login's password, first line of FILE (default: ${PASSWORD_ENV})",
    )
    g.add_argument(
        "--smtp-ca",
        metavar="FILE",
        help="trust this CA (PEM) for the relay's certificate instead of the system's",
    )
    g.add_argument(
        "--smtp-max-recipients",
        type=int,
        default=DEFAULT_MAX_RECIPIENTS,
        metavar="N",
        help=f"send each reply to at most N addresses, To first (default {DEFAULT_MAX_RECIPIENTS})",
    )


def relay_from_args(args: argparse.Namespace) -> SmtpRelay | None:
    """The relay :func:`add_options` described (None without ``--smtp``), checked."""
    tls = TlsMode(args.smtp_tls)
    extras = [o for o in ("smtp_user", "smtp_password_file", "smtp_ca") if getattr(args, o)]
    if not args.smtp:
        if extras or tls is not TlsMode.PLAIN:
            raise UserError("--smtp-tls, --smtp-user, --smtp-password-file, --smtp-ca need --smtp")
        return None
    if args.smtp_password_file and not args.smtp_user:
        raise UserError("--smtp-password-file needs --smtp-user NAME")
    base = parse_server(args.smtp, tls)
    relay = SmtpRelay(
        base.host,
        base.port,
        tls,
        user=args.smtp_user,
        password=PasswordSource(Path(args.smtp_password_file) if args.smtp_password_file else None)
        if args.smtp_user
        else None,
        ca=Path(args.smtp_ca) if args.smtp_ca else None,
        max_recipients=args.smtp_max_recipients,
    )
    relay.check()
    return relay
