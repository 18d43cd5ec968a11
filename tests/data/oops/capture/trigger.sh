#!/bin/bash
# Capture one real console log: build harness_oops.ko against the kernel's
# Debian headers, pack a busybox initramfs, boot under QEMU/TCG and save the
# serial console output.
#
#   trigger.sh KERNEL CASE OUT.log
#   KERNEL: 6.12 | 6.1 | 7.3 (7.3 has no headers: only module-free cases)
#           6.12-arm64 (Debian arm64 under qemu-system-aarch64; see below)
#           6.12-arm64-built (the harness's cross-built arm64 6.12; see below)
#   CASE:   boot noise warn bug null gpf pagefault divzero softlockup hardlockup hung
#           sched_atomic list refcount kfence irq two rcustall initoops
#           sysrq oom panic_oops softlockup2 noinit
#
# Needs: qemu-system-x86_64, busybox-static, cpio, gcc, and for module cases
# apt-get install linux-headers-<kver>. Kernels are expected extracted under
# /tmp/kernels (dpkg -x of Debian's linux-image packages).
# 6.12-arm64: the kernel and the arm64 busybox as the harness caches them
# (python -m harness boot on an arm64 entry fetches both), the module
# cross-built against the headers fetch_arm64_headers.py unpacks into
# $ARM64_HEADERS (default /tmp/a64/hdr/usr/src/linux-headers-<kver>).
# 6.12-arm64-built: the arm64 Image the harness cross-builds from
# linux-source-6.12 (tinyconfig + harness/kernels/guest-arm64.config, e.g.
# KHARNESS_ARM64_BUILD=1 pytest tests/integration/test_arm64_build.py), taken
# from its build slot's out dir ($ARM64_BUILT_OUT, default the first slot
# holding arch/arm64/boot/Image). The module is built against that out dir
# only if its .config has CONFIG_MODULES=y (tinyconfig has not: then only
# module-free cases such as sysrq and oom work).
set -euo pipefail
KERNEL=$1 CASE=$2 OUT=$3
SRC=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/h4}
case "$KERNEL" in
6.12) KVER=6.12.117+deb12-amd64; VMLINUZ=/tmp/kernels/root-6.12/boot/vmlinuz-$KVER ;;
6.1) KVER=6.1.0-56-amd64; VMLINUZ=/tmp/kernels/root-6.1/boot/vmlinuz-$KVER ;;
7.3) KVER=7.3.4+deb13-amd64; VMLINUZ=/tmp/kernels/root-7.3/usr/lib/modules/$KVER/vmlinuz ;;
6.12-arm64) KVER=6.12.117+deb12-arm64
	VMLINUZ=$(ls ~/.cache/kpatch-harness/debian/kernels/linux-image-6.12.*+deb12-arm64-unsigned_*/boot/vmlinuz-$KVER | tail -n1) ;;
6.12-debug)
	# the debug kernel of kernels-debug.yaml, from its build slot's out/
	BUILT=${DEBUG_BUILT_OUT:-$(dirname "$(grep -l '^CONFIG_LKDTM=y' ~/.cache/kpatch-harness/build/slots/*/out/.config | head -n1)")}
	BUILT=$(cd "$BUILT" && pwd)
	KVER=$(cat "$BUILT/include/config/kernel.release")-debug
	VMLINUZ=$BUILT/arch/x86/boot/bzImage ;;
6.12-arm64-built)
	BUILT=${ARM64_BUILT_OUT:-$(dirname "$(ls -d ~/.cache/kpatch-harness/build/slots/*/out/arch/arm64/boot/Image | head -n1)")/../../..}
	BUILT=$(cd "$BUILT" && pwd)
	KVER=$(cat "$BUILT/include/config/kernel.release")-built-arm64
	VMLINUZ=$BUILT/arch/arm64/boot/Image ;;
*) echo "unknown kernel $KERNEL" >&2; exit 2 ;;
esac
MEM=1G
CONSOLE=ttyS0 QEMU=(qemu-system-x86_64) BUSYBOX=/bin/busybox CC=gcc
HDR=/usr/src/linux-headers-$KVER
KMAKE=()
MODULE=harness_oops
case "$KVER" in
*-debug) HDR=$BUILT MODULE=harness_debug MEM=2G KMAKE=(KBUILD_MODPOST_WARN=1) ;;
# the built kernel first: its release also ends in -arm64
*-built-arm64)
	CONSOLE=ttyAMA0 QEMU=(qemu-system-aarch64 -machine virt,gic-version=3 -cpu cortex-a57)
	BUSYBOX=$(ls ~/.cache/kpatch-harness/userland/arm64-*/bin/busybox | tail -n1)
	CC=aarch64-linux-gnu-gcc HDR=$BUILT KMAKE=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
	grep -q '^CONFIG_MODULES=y' "$BUILT/.config" || HDR=/nonexistent ;;
*-arm64)
	CONSOLE=ttyAMA0 QEMU=(qemu-system-aarch64 -machine virt,gic-version=3 -cpu cortex-a57)
	BUSYBOX=$(ls ~/.cache/kpatch-harness/userland/arm64-*/bin/busybox | tail -n1)
	CC=aarch64-linux-gnu-gcc
	HDR=${ARM64_HEADERS:-/tmp/a64/hdr/usr/src/linux-headers-$KVER} ;;
esac
APPEND="console=$CONSOLE panic=-1 rdinit=/init harness.case=$CASE"
case "$CASE" in
rcustall) APPEND+=" rcupdate.rcu_cpu_stall_timeout=3 nowatchdog" ;;
hardlockup) APPEND+=" rcupdate.rcu_cpu_stall_timeout=3" ;;
kfence) APPEND+=" kfence.sample_interval=1" ;;
panic_oops) APPEND+=" oops=panic" ;;
dbg_stall) APPEND+=" rcupdate.rcu_cpu_stall_timeout=3 nowatchdog" ;;
oom) MEM=256M ;;
esac

ROOT=$WORK/root-$KVER-$CASE
rm -rf "$ROOT" && mkdir -p "$ROOT"/{bin,proc,sys,dev}
cp "$BUSYBOX" "$ROOT/bin/busybox"
cp "$SRC/init.sh" "$ROOT/init" && chmod +x "$ROOT/init"
# noinit: an /init that cannot be executed -> "No working init found" panic.
[ "$CASE" = noinit ] && printf '#!/bin/missing-shell\n' >"$ROOT/init"
if [ -d "$HDR" ]; then
	BUILD=$WORK/build-$KVER
	mkdir -p "$BUILD" && cp "$SRC/$MODULE.c" "$BUILD/"
	echo "obj-m := $MODULE.o" >"$BUILD/Kbuild"
	make -s -C "$HDR" "${KMAKE[@]}" M="$BUILD" modules >&2
	cp "$BUILD/$MODULE.ko" "$ROOT/"
fi
"$CC" -static -O1 -o "$ROOT/hog" "$SRC/hog.c"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initrd-$KVER-$CASE.gz"

# reboot: the console must show the second boot (killed by the timeout)
NOREBOOT=-no-reboot TIMEOUT=240
[ "$CASE" = reboot ] && NOREBOOT= TIMEOUT=100
timeout "$TIMEOUT" "${QEMU[@]}" -accel tcg -m "$MEM" -smp 2 -nographic $NOREBOOT \
	-kernel "$VMLINUZ" -initrd "$WORK/initrd-$KVER-$CASE.gz" -append "$APPEND" \
	</dev/null >"$OUT" 2>&1 || echo "qemu exit $?" >&2
