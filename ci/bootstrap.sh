#!/usr/bin/env bash
# Install what the harness needs: Debian packages (apt-get when root, else the
# exact command to run) and a virtualenv with the Python dependencies from
# pyproject.toml.  Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  qemu-system-x86 busybox-static dropbear-bin openssh-client
  # isolation: test restores a guest in place: savevm into a scratch qcow2 qemu-img makes
  qemu-utils
  # remote test hosts (the namespace-host test runs its own sshd)
  openssh-server iproute2
  gcc libc6-dev make cpio kmod xz-utils zstd dpkg gpgv debian-archive-keyring
  python3 python3-venv
  # backend: virtme (virtme-ng reads the kernel release with file)
  file
  # kernels built from source
  ccache bc bison flex libelf-dev libssl-dev git patch
  # the tests open results/<run>/index.html in a real headless browser
  chromium
  # kselftests (selftests:): their install step copies with rsync
  rsync
  # code from untrusted patches (kbuild, kselftests, tree scripts) runs in bubblewrap
  bubblewrap
  # the list bot's tests serve a real mailing list (public-inbox-httpd) on 127.0.0.1
  public-inbox
  # arm64 guests (harness/arch.py): the emulator and the cross compiler
  qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing Debian packages; run as root:" >&2
    echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
stamp=.venv/.pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -x .venv/bin/python ]]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "bootstrap: installing Python dependencies"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
