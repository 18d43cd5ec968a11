"""Sending a reply through an SMTP server: one place that talks SMTP, with clear failures.

A refusal (4xx or 5xx), a server that is not there or one that stalls all
end as :class:`SendFailed` naming the server and what it said; the caller
keeps the reply (it is a file in the results directory before any sending)
and the bot tries again on its next poll.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from harness.errors import InfraError, UserError

_TIMEOUT = 60.0


class SendFailed(InfraError):
    """The SMTP server did not take the reply."""


@dataclass(frozen=True)
class Server:
    """Where replies go: an SMTP server (no TLS, no login: a local relay)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_server(text: str) -> Server:
    """'HOST:PORT' (or 'HOST', port 25); UserError naming the form otherwise."""
    host, _sep, port = text.strip().rpartition(":")
    if not _sep:
        host, port = text.strip(), "25"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--smtp {text!r}: give HOST:PORT, e.g. --smtp 127.0.0.1:25")
    return Server(host, int(port))


def send(message: EmailMessage, server: Server) -> tuple[str, ...]:
    """Deliver ``message`` to its To and Cc; SendFailed with the server's words when not.

    Returns the recipients the server refused while taking the others: the
    mail went out, so it is not sent again (those would get it twice).
    """
    try:
        with smtplib.SMTP(server.host, server.port, timeout=_TIMEOUT) as client:
            refused = client.send_message(message)
    except smtplib.SMTPResponseException as exc:
        said = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else exc.smtp_error
        )
        raise SendFailed(
            f"SMTP server {server} refused the reply: {exc.smtp_code} {said}"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendFailed(
            f"SMTP server {server} refused every recipient: {exc.recipients}"
        ) from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise SendFailed(
            f"could not send the reply through {server}: {exc}; check --smtp and that the "
            "server accepts mail from this host"
        ) from None
    return tuple(refused)
