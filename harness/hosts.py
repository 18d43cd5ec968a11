"""hosts.yaml: the machines that run guests for a run, as pytest-xdist ``--tx`` specs.

Each host needs the project checked out and set up (``make setup``) at
``path``; xdist's ssh gateway starts ``python`` there and the worker boots its
kernels on that host.  Nothing is copied over (xdist's rsync is deprecated):
the checkout on the host is what runs, so keep it at the controller's commit.

```yaml
hosts:
  - ssh: root@build1              # anything ssh takes: user@host, a Host of ~/.ssh/config
    path: /srv/kpatch-harness     # the project on that host
    python: /srv/kpatch-harness/.venv/bin/python   # default: <path>/.venv/bin/python
    workers: 2                    # guests side by side there (default 1)
    ssh_config: ~/.ssh/kharness   # optional ssh -F file
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.errors import ConfigError
from harness.yamlcheck import Fields


@dataclass(frozen=True)
class Host:
    """One test host and how many workers it runs."""

    ssh: str
    path: str
    python: str
    workers: int = 1
    ssh_config: str | None = None

    def tx(self) -> str:
        """The ``--tx`` spec xdist takes for this host."""
        spec = f"ssh={self.ssh}//python={self.python}//chdir={self.path}"
        if self.ssh_config:
            spec += f"//ssh_config={self.ssh_config}"
        return f"{self.workers}*{spec}" if self.workers > 1 else spec


def load_hosts(path: Path) -> list[Host]:
    """Read and check ``path``; every problem in one ConfigError."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the hosts file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    problems: list[str] = []
    top = Fields(data, str(path), problems)
    entries = top.get("hosts", list, [], required=True)
    top.finish()
    hosts = []
    for n, entry in enumerate(entries, 1):
        f = Fields(entry, f"{path}: hosts[{n}]", problems)
        ssh = f.get("ssh", str, "", required=True)
        where = f.get("path", str, "", required=True)
        python = f.get("python", str, f"{where.rstrip('/')}/.venv/bin/python")
        workers = f.get("workers", int, 1)
        ssh_config = f.get("ssh_config", str)
        f.finish()
        if workers < 1:
            f.problem("'workers' must be 1 or more")
        if where and not where.startswith("/"):
            f.problem(f"'path' must be absolute on the host, got '{where}'")
        if "//" in ssh or "=" in ssh:
            f.problem(f"'ssh' must be a host name (user@host), got '{ssh}'")
        hosts.append(Host(ssh, where, python, workers, ssh_config))
    if not entries and not problems:
        problems.append(f"{path}: 'hosts' lists no host")
    if problems:
        raise ConfigError("\n".join(problems))
    return hosts
