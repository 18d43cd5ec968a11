"""The build sandbox with the real bubblewrap: a hostile tree gets nothing, a control run does.

The fake kernel tree (tests/unit/fake_kbuild.py) is made hostile: its
Makefile, at parse time (``$(shell ...)``, as Kconfig does) and in a recipe
of the image, reads a secret, writes outside its slot (a directory of the
test and the host's /tmp) and connects to a listener on 127.0.0.1.  Each
hostile test has its control: the same tree built without the sandbox
reaches every one of them, so the sandbox is what stops them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config import KernelSpec, load_kernels, untrusted
from harness.errors import BuildFailed, ConfigError, ToolMissing, UserError
from harness.kernels import kbuild, sandbox
from harness.kernels.build import BuildSource
from harness.kernels.kselftest_build import build_targets
from tests.unit.fake_kbuild import make_tree, selftests_files

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap (bubblewrap)")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))


_LAST = b"the test's own, last"


class Listener:
    """A TCP listener on 127.0.0.1 that records what connects to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(100))
                except OSError:
                    self.received.append(b"")

    def settled(self) -> list[bytes]:
        """What every connection made before now sent.

        A connection of the test's own is queued behind them (the accept queue
        is first in, first out; a build's connects end before the build does),
        so once its bytes are read, so are theirs: no waiting out a deadline
        for a connection that must never come.
        """
        with socket.create_connection(("127.0.0.1", self.port), 5) as probe:
            probe.sendall(_LAST)
        deadline = time.monotonic() + 10
        while _LAST not in self.received and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _LAST in self.received, "the listener never read the test's own connection"
        return [r for r in self.received if r != _LAST]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


@dataclass(frozen=True)
class Targets:
    """What the hostile tree goes after."""

    secret_file: Path  # in a home-like directory of the test
    secret: str
    outside: Path  # a directory outside the slot
    host_tmp: Path  # a file in the host's /tmp
    port: int


@pytest.fixture
def targets(tmp_path: Path, listener: Listener) -> Iterator[Targets]:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    secret = f"SECRET-{uuid.uuid4().hex}"
    (home / ".ssh" / "id_ed25519").write_text(secret + "\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    host_tmp = Path("/tmp") / f"kharness-sandbox-probe-{uuid.uuid4().hex}"
    yield Targets(home / ".ssh" / "id_ed25519", secret, outside, host_tmp, listener.port)
    host_tmp.unlink(missing_ok=True)


def hostile_makefile(t: Targets) -> str:
    """Lines added to the fake tree's Makefile: each attack at parse time and in a recipe."""
    connect = (
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3)"
        ".sendall(b'{what}')\""
    )
    return textwrap.dedent(f"""
        LEAK := $(shell cat {t.secret_file} 2>/dev/null)
        $(info leaked:$(LEAK))
        $(shell echo pwned > {t.outside}/from-shell 2>/dev/null)
        $(shell {connect.format(port=t.port, what="shell")} 2>/dev/null)
        .PHONY: hostile
        bzImage: hostile
        hostile:
        > -@cat {t.secret_file} > $(O)/stolen 2>/dev/null; true
        > -@echo pwned > {t.outside}/from-recipe 2>/dev/null; true
        > -@echo pwned > {t.host_tmp} 2>/dev/null; true
        > -@{connect.format(port=t.port, what="recipe")} 2>/dev/null; true
        """)


def _spec(tmp_path: Path, tree: Path, extra: str = "", backend: str = "qemu") -> KernelSpec:
    path = tmp_path / "kernels.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        kernels:
          - name: k
            backend: {backend}
            build: {{source: {tree}, guest_config: false{extra}}}
        """)
    )
    return load_kernels(path)[0]


def _build(tmp_path: Path, t: Targets, sandboxed: bool) -> Path:
    """Build the hostile tree; the stored image's path."""
    tree = make_tree(tmp_path / "linux")
    with (tree / "Makefile").open("a") as f:
        f.write(hostile_makefile(t))
    spec = _spec(tmp_path, tree, ", sandbox: true" if sandboxed else "")
    assert spec.untrusted is sandboxed
    assert isinstance(spec.source, BuildSource)
    image = spec.source.resolve(print)
    return image.vmlinuz


def _files_holding(root: Path, text: str) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and text.encode() in p.read_bytes()
    ]


def test_a_hostile_tree_in_the_sandbox_builds_but_reaches_nothing(
    tmp_path: Path, targets: Targets, listener: Listener
) -> None:
    image = _build(tmp_path, targets, sandboxed=True)
    assert image.is_file()  # the build itself succeeded in its slot
    assert listener.settled() == []  # no connection: not from $(shell), not from the recipe
    assert list(targets.outside.iterdir()) == []
    assert not targets.host_tmp.exists()
    # the secret is in no log, slot, stored image or config of the cache
    assert _files_holding(tmp_path / "cache", targets.secret) == []
    logs = list((tmp_path / "cache" / "build" / "logs").iterdir())
    assert logs and all("leaked:\n" in p.read_text() for p in logs)  # it tried, read nothing


def test_control_the_same_tree_without_the_sandbox_reaches_everything(
    tmp_path: Path, targets: Targets, listener: Listener
) -> None:
    image = _build(tmp_path, targets, sandboxed=False)
    assert image.is_file()
    assert set(listener.settled()) >= {b"shell", b"recipe"}
    assert sorted(p.name for p in targets.outside.iterdir()) == ["from-recipe", "from-shell"]
    assert targets.host_tmp.is_file()
    assert _files_holding(tmp_path / "cache", targets.secret)  # log (leaked:) and out/stolen


def test_a_link_planted_in_the_output_is_not_followed_by_the_harness(
    tmp_path: Path, targets: Targets
) -> None:
    """System.map -> a host secret: the sandbox can make the link; the copy refuses it."""
    tree = make_tree(tmp_path / "linux")
    with (tree / "Makefile").open("a") as f:
        f.write(f"bzImage: plant\nplant:\n> @ln -sf {targets.secret_file} $(O)/System.map\n")
    spec = _spec(tmp_path, tree, ", sandbox: true")
    assert isinstance(spec.source, BuildSource)
    with pytest.raises(BuildFailed, match=r"System\.map leads out of .*refusing to read it"):
        spec.source.resolve(print)
    assert _files_holding(tmp_path / "cache", targets.secret) == []


def test_a_sandboxed_kselftest_builds_and_cannot_write_the_host(
    tmp_path: Path, targets: Targets
) -> None:
    files = selftests_files({"vm": "int main(void) { return 0; }\n"})
    files["tools/testing/selftests/vm/Makefile"] = (
        "TEST_GEN_PROGS := vm_test\ninclude ../lib.mk\n"
        f"$(shell echo pwned > {targets.outside}/from-selftest 2>/dev/null)\n"
        f"$(shell cp {targets.secret_file} $(OUTPUT)/stolen 2>/dev/null)\n"
    )
    tree = make_tree(tmp_path / "linux", files)
    source = _spec(tmp_path, tree, ", sandbox: true").source
    assert isinstance(source, BuildSource)
    built = build_targets(source, ("vm",), print)["vm"]
    assert built.error is None, built.details
    assert (built.directory / "vm_test").is_file()
    assert list(targets.outside.iterdir()) == []
    assert _files_holding(tmp_path / "cache", targets.secret) == []


def test_an_untrusted_kernel_is_refused_the_virtme_backend(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    with pytest.raises(ConfigError, match=r"virtme shows the host's file system.*backend: qemu"):
        _spec(tmp_path, tree, ", sandbox: true", backend="virtme")
    trusted = _spec(tmp_path, tree, backend="virtme")  # the operator's own tree may
    with pytest.raises(UserError, match="kernel 'k': backend: virtme shows the host's file"):
        untrusted(trusted)
    made = untrusted(_spec(tmp_path, tree))
    assert made.untrusted and isinstance(made.source, BuildSource) and made.source.recipe.sandbox
    assert isinstance(trusted.source, BuildSource)
    assert made.source.recipe.key() != _spec(tmp_path, tree).source.recipe.key()  # type: ignore[union-attr]


def test_a_missing_bwrap_is_an_error_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap (and nothing else) on it
    with pytest.raises(ToolMissing, match=r"bwrap is not installed.*apt-get install -y bubblewrap"):
        kbuild.toolchain(tmp_path / "cache", untrusted=True)


def test_the_sandbox_view_runs_the_cross_compiler_and_hides_the_rest(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.c").write_text("int f(void) { return 1; }\n")
    compilers = [c for c in ("gcc", "aarch64-linux-gnu-gcc") if shutil.which(c)]
    view = sandbox.Sandbox(writable=(work,))
    for cc in compilers:
        argv = view.argv([cc, "-c", "a.c", "-o", f"{cc}.o"], cwd=work)
        proc = subprocess.run(argv, env=view.env({}), capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert (work / f"{cc}.o").is_file()
    probe = "id -u; ls /root /home /work /var 2>&1; env; cat /etc/shadow 2>&1; echo x > /usr/x"
    proc = subprocess.run(
        view.argv(["sh", "-c", probe]),
        env=view.env({}),
        capture_output=True,
        text=True,
    )
    out = proc.stdout + proc.stderr
    assert out.startswith("65534\n")
    for hidden in ("/root", "/home", "/work", "/var"):
        assert f"cannot access '{hidden}': No such file or directory" in out
    assert "/etc/shadow: No such file or directory" in out
    assert "Read-only file system" in out
    assert "KHARNESS_CACHE" not in out  # the harness's environment stays outside


def test_an_interrupted_sandboxed_make_leaves_nothing_running(tmp_path: Path) -> None:
    """Killing bwrap's process group ends the sandbox's PID namespace: make and its children."""
    marker = f"{os.getpid() % 1000}.{len(str(tmp_path))}23"
    src = tmp_path / "src"
    src.mkdir()
    (src / "Makefile").write_text(f"all:\n\t@echo started; sleep {marker} & sleep {marker}\n")

    def interrupt(line: str) -> None:
        if "started" in line:
            raise KeyboardInterrupt

    tools = kbuild.Toolchain(1, None, sandbox=True)
    with pytest.raises(KeyboardInterrupt):
        kbuild.run_make(tools, src, tmp_path / "out", ("all",), tmp_path / "log", None, interrupt)
    deadline = time.monotonic() + 10
    while (left := _sleepers(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []


def _sleepers(marker: str) -> list[str]:
    found = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and f"sleep\0{marker}".encode() in (p / "cmdline").read_bytes():
                found.append(p.name)
        except OSError:
            continue
    return found


def test_every_series_command_of_the_bot_b4check_and_mcp_is_sandboxed() -> None:
    from harness.mail.commandline import SeriesCommand

    command = SeriesCommand.for_message("<a@b>", "k", tests=("t",))
    assert "--sandbox" in command.argv()
    assert "--sandbox" in command.line()  # the reproduce line a maintainer pastes, too
    assert "--sandbox" not in SeriesCommand("k", "s.mbox", sandbox=False).argv()


def test_series_sandbox_refuses_a_virtme_kernel_before_anything_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.commands.cli import main

    tree = make_tree(tmp_path / "linux")
    _spec(tmp_path, tree, backend="virtme")  # writes kernels.yaml: a trusted virtme entry
    patch = tmp_path / "p.patch"
    patch.write_text("")
    monkeypatch.chdir(tmp_path)
    argv = ["--kernels-file", str(tmp_path / "kernels.yaml"), "series", "--kernel", "k"]
    code = main([*argv, "--series", str(patch), "--sandbox", "--results-dir", str(tmp_path)])
    assert code != 0
    err = capsys.readouterr().err
    assert "backend: virtme shows the host's file system to the guest" in err
    assert "untrusted kernels (sandboxed builds) run on backend: qemu" in err
    assert not (tmp_path / "cache" / "build" / "slots").exists()  # nothing was built


def test_run_tree_sandbox_is_a_sandboxed_entry_and_reaches_the_plugin(tmp_path: Path) -> None:
    from harness.commands.adhoc import AdHocKernels

    tree = make_tree(tmp_path / "linux")
    adhoc = AdHocKernels(tree=str(tree), sandbox=True)
    (spec,) = adhoc.specs(tmp_path)
    assert spec.untrusted and isinstance(spec.source, BuildSource)
    assert spec.source.recipe.sandbox
    assert "--sandbox" in adhoc.argv()
    with pytest.raises(UserError, match="--sandbox goes with --tree PATH"):
        AdHocKernels(image=str(tree / "Makefile"), sandbox=True).check()


def test_a_sandboxed_bisect_plan_keeps_its_sandbox_across_the_step_process(tmp_path: Path) -> None:
    from dataclasses import replace

    from harness.commands.bisect import BisectPlan
    from harness.kernels.build import make_recipe

    plan = BisectPlan(tmp_path, "t", replace(make_recipe(), sandbox=True), tmp_path)
    plan.save(tmp_path / "plan.json")
    assert BisectPlan.load(tmp_path / "plan.json").recipe.sandbox


def test_the_trees_get_maintainer_script_runs_in_the_sandbox(
    tmp_path: Path, targets: Targets
) -> None:
    """A patched scripts/get_maintainer.pl answers, but cannot read or write the host."""
    from harness.oops.maintainers import get_maintainers

    tree = tmp_path / "linux"
    (tree / "scripts").mkdir(parents=True)
    (tree / "MAINTAINERS").write_text("")
    (tree / "scripts/get_maintainer.pl").write_text(
        f'open(my $o, ">", "{targets.outside}/from-perl");\n'
        f'open(my $s, "<", "{targets.secret_file}") and print "Leak <" . <$s> . "> (x:y)\\n";\n'
        "print 'Ann Maint <ann@example.org> (maintainer:MEMORY MANAGEMENT)', \"\\n\";\n"
    )
    found = get_maintainers(tree, "mm/memory.c")
    assert [(m.address, m.role) for m in found] == [("Ann Maint <ann@example.org>", "maintainer")]
    assert list(targets.outside.iterdir()) == []
