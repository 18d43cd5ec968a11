"""A real mailing list on 127.0.0.1 for the bot's tests: public-inbox and an SMTP server.

:class:`PublicInbox` makes a v2 inbox with Debian's public-inbox, delivers
mail with ``public-inbox-mda`` exactly as a list's MTA would, and serves it
with ``public-inbox-httpd``, which b4 and the bot read as they read lore.
:class:`SmtpSink` is aiosmtpd on a free port: it keeps every message it
takes, and can be told to refuse the next ones, as a real relay does when
it is busy.  Both leave no process, port or directory behind.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from harness.machine.ports import free_port
from tests.unit.fake_kbuild import make_tree

LIST = "test"
ADDRESS = "test@lists.example.org"


class PublicInbox:
    """One list: its inbox directory, and an httpd serving it while started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.config = root / "pi-config"
        self.inboxdir = root / LIST
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/{LIST}"
        self.env = {**os.environ, "PI_CONFIG": str(self.config), "HOME": str(self.home)}
        self.httpd: subprocess.Popen[bytes] | None = None
        subprocess.run(
            [
                "public-inbox-init",
                "-V2",
                "-L",
                "medium",
                LIST,
                str(self.inboxdir),
                self.url,
                ADDRESS,
            ],
            env=self.env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["git", "config", "-f", str(self.config), "publicinboxmda.spamcheck", "none"],
            check=True,
        )

    def deliver(self, raw: bytes) -> None:
        """Put one message on the list, as its MTA would."""
        subprocess.run(
            ["public-inbox-mda", "--no-precheck"],
            input=raw,
            env={**self.env, "ORIGINAL_RECIPIENT": ADDRESS},
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self, address: str = "127.0.0.1") -> None:
        """Serve the inbox on address:port (0.0.0.0: every address); returns once it answers."""
        log = (self.root / "httpd.log").open("ab")
        self.httpd = subprocess.Popen(
            ["public-inbox-httpd", "-l", f"http://{address}:{self.port}"],
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/manifest.js.gz", timeout=2):
                    return
            except OSError:
                if self.httpd.poll() is not None:
                    raise RuntimeError(
                        f"public-inbox-httpd exited: {self.root}/httpd.log"
                    ) from None
                time.sleep(0.2)
        raise RuntimeError("public-inbox-httpd did not answer in 30s")

    def stop(self) -> None:
        """Stop serving (the inbox stays); the list is 'down' until :meth:`start`."""
        if self.httpd is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.httpd.pid, signal.SIGTERM)
        try:
            self.httpd.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.httpd.pid, signal.SIGKILL)
            self.httpd.wait()
        self.httpd = None


class _Keeper:
    """aiosmtpd handler: keeps what it takes, refuses while told to."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.received: list[float] = []
        self.refusals = 0
        self.refused = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refusals > 0:
            self.refusals -= 1
            self.refused += 1
            return "451 4.3.0 try again later (the test said so)"
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.received.append(time.time())
        return "250 OK"


class SmtpSink:
    """A real SMTP server on 127.0.0.1 that keeps every message."""

    def __init__(self) -> None:
        self.keeper = _Keeper()
        self.port = free_port()
        self.controller = Controller(self.keeper, hostname="127.0.0.1", port=self.port)

    @property
    def address(self) -> str:
        """HOST:PORT, as --smtp takes it."""
        return f"127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message taken, in order."""
        return list(self.keeper.messages)

    def refuse(self, count: int) -> None:
        """Answer 451 to the next ``count`` messages."""
        self.keeper.refusals = count

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def format_series(
    repo: Path,
    span: str,
    out: Path,
    version: int = 1,
    cover: bool = True,
    base: str | None = None,
    sender: str = "Dev One <dev@example.org>",
    title: str = "a series",
) -> list[bytes]:
    """``git format-patch --thread`` of ``span`` in ``repo``: the raw messages, in order.

    The cover letter gets ``title``; the Message-IDs get a random part, since
    git makes them from the second and the address only (two series made in
    one second would share them).
    """
    argv = ["git", "-C", str(repo), "-c", f"user.name={sender.split(' <')[0]}"]
    argv += ["-c", f"user.email={sender.split('<')[1].rstrip('>')}", "format-patch", "-q"]
    argv += ["--thread", f"-v{version}", "--to", ADDRESS, "-o", str(out)]
    if cover:
        argv.append("--cover-letter")
    if base:
        argv.append(f"--base={base}")
    subprocess.run([*argv, span], check=True, capture_output=True)
    token = uuid.uuid4().hex[:8].encode()
    found = []
    for path in sorted(out.glob("*.patch")):
        raw = re.sub(rb"\.(\d{9,})\.git\.", rb".\1-" + token + rb".git.", path.read_bytes())
        found.append(raw.replace(b"*** SUBJECT HERE ***", title.encode()))
    return found


def served_inbox(tmp_path: Path) -> Iterator[PublicInbox]:
    """A real list served on 127.0.0.1; stopped (no httpd left) whatever the test does
    (a test module's ``inbox`` fixture yields from it)."""
    pi = PublicInbox(tmp_path / "list")
    pi.start()
    try:
        yield pi
    finally:
        pid = pi.httpd.pid if pi.httpd else None
        pi.stop()
        if pid is not None:
            assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0


def fake_git_tree(tmp_path: Path) -> Path:
    """A fake kernel tree as a git repository, with two commits a series can be made of."""
    tree = make_tree(tmp_path / "linux")
    git = ["git", "-C", str(tree), "-c", "user.name=Dev", "-c", "user.email=dev@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    return tree


def misfit_series(
    tree: Path,
    out: Path,
    sender: str = "Dev One <dev@example.org>",
    title: str = "mm",
    cover: bool = False,
) -> list[bytes]:
    """A one-patch series made on a branch the bot's base lacks: it does not apply there,
    so the bot answers it without building or booting anything."""
    git = ["git", "-C", str(tree), "-c", "user.name=Dev", "-c", "user.email=dev@example.org"]
    subprocess.run([*git, "checkout", "-qb", "elsewhere"], check=True)
    path = tree / "mm/memory.c"
    path.write_text("int fault(void) { return 5; }\n")
    subprocess.run([*git, "commit", "-qam", "mm: elsewhere"], check=True)
    path.write_text("int fault(void) { return 6; }\n")
    subprocess.run([*git, "commit", "-qam", "mm: fault returns six"], check=True)
    series = format_series(tree, "HEAD~1..HEAD", out, cover=cover, sender=sender, title=title)
    subprocess.run([*git, "checkout", "-q", "-"], check=True)
    subprocess.run([*git, "branch", "-qD", "elsewhere"], check=True)
    return series


def kernels_yaml(tmp_path: Path, tree: Path) -> Path:
    """kernels.yaml with one build: entry, ``fake``, on ``tree``."""
    path = tmp_path / "kernels.yaml"
    path.write_text(f"kernels:\n  - name: fake\n    build: {{source: {tree}}}\n")
    return path


def watch_argv(
    kernels: Path, inbox: PublicInbox, results: Path, *extra: str, interval: float = 0.5
) -> list[str]:
    """``kharness watch`` on ``inbox`` for the ``fake`` kernel, polling every ``interval`` s."""
    argv = [sys.executable, "-m", "harness", "--kernels-file", str(kernels), "watch"]
    argv += ["--inbox", inbox.url, "--kernel", "fake", "--interval", str(interval)]
    argv += ["--results-dir", str(results), "--reply-from", "kharness <bot@ci.example.org>"]
    return [*argv, *extra]
