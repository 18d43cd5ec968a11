"""A fake kernel tree whose Makefile mimics kbuild, so build logic tests run in seconds.

It answers what the build provider asks of a real tree: ``make -C SRC O=OUT
tinyconfig|defconfig|allnoconfig|olddefconfig|bzImage`` with ``KCONFIG_CONFIG``
honoured, an olddefconfig that drops options whose ``depends on`` is unmet
(as kconfig does), "compiles" every ``*.c`` into O= with real make
dependencies (so incremental rebuilds are real: only changed sources are
remade, each printed as ``  CC      name.o``), fails on a ``#error`` line the
way gcc reports it, and links a bzImage with the x86 boot header (or, with
``ARCH=arm64 CROSS_COMPILE=...``, an ``Image`` with arm64's header magic).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from harness.errors import run_checked

MAKEFILE = r"""
.RECIPEPREFIX = >
O ?= .
KCONFIG_CONFIG ?= $(O)/.config
SRCS := $(shell find $(CURDIR)/kernel $(CURDIR)/mm -name '*.c' 2>/dev/null)
OBJS := $(patsubst $(CURDIR)/%.c,$(O)/%.o,$(SRCS))
ERR = grep -n -m1 '^.error' $<

tinyconfig allnoconfig defconfig:
> @mkdir -p $(O)
> @printf 'CONFIG_64BIT=y\n# CONFIG_SMP is not set\nCONFIG_BASE_$@=y\n' > $(KCONFIG_CONFIG)

olddefconfig:
> @python3 $(CURDIR)/scripts/kconfig/fake_conf.py $(CURDIR) $(KCONFIG_CONFIG)

$(O)/%.o: $(CURDIR)/%.c $(O)/.config
> @mkdir -p $(dir $@)
> @echo "  CC      $*.o"
> @if grep -q '^.error' $<; then \
>   echo "$*.c:$$($(ERR) | cut -d: -f1):2: error: $$($(ERR) | cut -d: -f2- | cut -c8-)"; \
>   echo "make[2]: *** [scripts/Makefile.build:229: $*.o] Error 1"; exit 1; fi
> @cp $< $@

headers:
> @mkdir -p $(O)/usr/include/linux
> @echo "  HDRINST usr/include/linux/fake.h"
> @echo '#define FAKE_UAPI_VERSION 612' > $(O)/usr/include/linux/fake.h

bzImage: $(OBJS)
> @mkdir -p $(O)/arch/x86/boot $(O)/include/config
> @echo "  LD      vmlinux"
> @python3 $(CURDIR)/scripts/kconfig/fake_link.py $(O)/arch/x86/boot/bzImage $(O)/.config $(OBJS)
> @echo 6.12.0-fake > $(O)/include/config/kernel.release
> @echo "Kernel: arch/x86/boot/bzImage is ready"

Image: $(OBJS)
> @test "$(ARCH)" = arm64 -a -n "$(CROSS_COMPILE)" || { echo "*** Image needs ARCH=arm64"; exit 2; }
> @mkdir -p $(O)/arch/arm64/boot $(O)/include/config
> @echo "  LD      vmlinux"
> @python3 $(CURDIR)/scripts/kconfig/fake_link.py $(O)/arch/arm64/boot/Image $(O)/.config $(OBJS)
> @echo 6.12.0-fake > $(O)/include/config/kernel.release
"""

FAKE_LINK = """
import sys
image = bytearray(0x400)
if sys.argv[1].endswith("/Image"):
    image[0x38:0x3C] = b"ARM\\x64"  # arm64 Image header magic
else:
    image[0x202:0x206] = b"HdrS"
for name in sys.argv[2:]:
    image += open(name, "rb").read()
open(sys.argv[1], "wb").write(bytes(image))
"""

FAKE_CONF = r"""
import re, sys
from pathlib import Path
tree, config = Path(sys.argv[1]), Path(sys.argv[2])
known, deps = set(), {}
for kc in tree.rglob("Kconfig*"):
    current = None
    for line in kc.read_text().splitlines():
        m = re.match(r"\s*config\s+(\w+)", line)
        if m:
            current = m.group(1); known.add(current); continue
        m = re.match(r"\s*depends on\s+(\w+)", line)
        if m and current:
            deps.setdefault(current, []).append(m.group(1))
values = {}
for line in config.read_text().splitlines():
    m = re.match(r"(CONFIG_\w+)=(.*)", line)
    if m:
        values[m.group(1)] = m.group(2)
    m = re.match(r"# (CONFIG_\w+) is not set", line)
    if m:
        values[m.group(1)] = "n"
out = []
for name, value in values.items():
    sym = name[len("CONFIG_"):]
    if sym not in known:
        continue
    if value != "n" and any(values.get("CONFIG_" + d, "n") == "n" for d in deps.get(sym, [])):
        value = "n"
    out.append(f"# {name} is not set" if value == "n" else f"{name}={value}")
config.write_text("\n".join(out) + "\n")
"""

KCONFIG = """\
config 64BIT
\tbool "64-bit kernel"

config SMP
\tbool "SMP"

config NUMA
\tbool "NUMA"
\tdepends on SMP
\thelp
\t  if this help line were read as Kconfig it would open an 'if' block

config USERFAULTFD
\tbool "userfaultfd"

config BASE_tinyconfig
\tbool

config BASE_defconfig
\tbool
"""


#: tools/testing/selftests as kselftest has it, in small: O= sets BUILD and the
#: headers it compiles against, TARGETS selects, install copies and lists the tests
SELFTESTS_MAKEFILE = r"""
.RECIPEPREFIX = >
BUILD := $(abspath $(O))/kselftest
export KHDR_INCLUDES := -isystem $(abspath $(O))/usr/include
all:
> @for t in $(TARGETS); do mkdir -p $(BUILD)/$$t && \
>   $(MAKE) -s -C $$t OUTPUT=$(BUILD)/$$t || exit 2; done
install: all
> @for t in $(TARGETS); do mkdir -p $(KSFT_INSTALL_PATH)/$$t && \
>   cp $(BUILD)/$$t/* $$t/settings $$t/*.sh $(KSFT_INSTALL_PATH)/$$t/ 2>/dev/null; \
>   $(MAKE) -s -C $$t COLLECTION=$$t emit_tests >> $(KSFT_INSTALL_PATH)/kselftest-list.txt; done
"""

SELFTESTS_LIB_MK = r"""
.RECIPEPREFIX = >
OUTPUT ?= $(CURDIR)
all: $(patsubst %,$(OUTPUT)/%,$(TEST_GEN_PROGS))
$(OUTPUT)/%: %.c
> $(CC) $(CFLAGS) $(KHDR_INCLUDES) $< -o $@
emit_tests:
> @for t in $(TEST_GEN_PROGS) $(TEST_PROGS); do echo "$(COLLECTION):$$t"; done
"""


def selftests_files(targets: dict[str, str]) -> dict[str, str]:
    """A fake selftests tree: one target per entry, one C test (``<target>_test.c``) each."""
    base = "tools/testing/selftests"
    files = {f"{base}/Makefile": SELFTESTS_MAKEFILE, f"{base}/lib.mk": SELFTESTS_LIB_MK}
    for target, source in targets.items():
        files[f"{base}/{target}/Makefile"] = (
            f"TEST_GEN_PROGS := {target}_test\nTEST_PROGS := run.sh\ninclude ../lib.mk\n"
        )
        files[f"{base}/{target}/{target}_test.c"] = source
        files[f"{base}/{target}/run.sh"] = "#!/bin/bash\necho ok\n"
        files[f"{base}/{target}/settings"] = "timeout=120\n"
    return files


def make_tree(root: Path, files: dict[str, str] | None = None) -> Path:
    """Write a fake kernel tree at ``root``; ``files`` adds or overrides sources."""
    content = {
        "Makefile": textwrap.dedent(MAKEFILE).lstrip(),
        "Kconfig": KCONFIG,
        "arch/Kconfig": "",
        "scripts/kconfig/fake_conf.py": FAKE_CONF,
        "scripts/kconfig/fake_link.py": FAKE_LINK,
        "kernel/fork.c": "int fork(void) { return 0; }\n",
        "mm/memory.c": "int fault(void) { return 1; }\n",
        "mm/filemap.c": "int map_pages(void) { return 2; }\n",
    }
    content.update(files or {})
    for name, text in content.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def git_tree(root: Path, files: dict[str, str] | None = None) -> Path:
    """The fake tree as a git repository with one commit."""
    make_tree(root, files)
    git(root, "init", "-q", "-b", "master")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def git(repo: Path, *args: str) -> str:
    """Run git with a fixed identity; the output."""
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
    }
    return run_checked(["git", "-C", str(repo), *args], env=env).stdout


def format_patch(path: str, old: str, new: str, subject: str, number: str = "") -> str:
    """A git-format-patch style message changing one line of ``path``."""
    prefix = f"[PATCH {number}] " if number else "[PATCH] "
    return textwrap.dedent(f"""\
        From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
        From: Dev <dev@example.org>
        Date: Thu, 1 Jan 2026 00:00:00 +0000
        Subject: {prefix}{subject}

        Why this change.

        ---
        diff --git a/{path} b/{path}
        --- a/{path}
        +++ b/{path}
        @@ -1 +1 @@
        -{old}
        +{new}
        --
        2.39.5

        """)
