#!/bin/bash
# Capture one real console log: build harness_oops.ko against the kernel's
# Debian headers, pack a busybox initramfs, boot under QEMU/TCG and save the
# serial console output.
#
#   trigger.sh KERNEL CASE OUT.log
#   KERNEL: 6.12 | 6.1 | 7.3 (7.3 has no headers: only module-free cases)
#   CASE:   boot noise warn bug null gpf pagefault divzero softlockup hardlockup hung
#           sched_atomic list refcount kfence irq two rcustall initoops
#           sysrq oom panic_oops softlockup2 noinit
#
# Needs: qemu-system-x86_64, busybox-static, cpio, gcc, and for module cases
# apt-get install linux-headers-<kver>. Kernels are expected extracted under
# /tmp/kernels (dpkg -x of Debian's linux-image packages).
set -euo pipefail
KERNEL=$1 CASE=$2 OUT=$3
SRC=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/h4}
case "$KERNEL" in
6.12) KVER=6.12.117+deb12-amd64; VMLINUZ=/tmp/kernels/root-6.12/boot/vmlinuz-$KVER ;;
6.1) KVER=6.1.0-56-amd64; VMLINUZ=/tmp/kernels/root-6.1/boot/vmlinuz-$KVER ;;
7.3) KVER=7.3.4+deb13-amd64; VMLINUZ=/tmp/kernels/root-7.3/usr/lib/modules/$KVER/vmlinuz ;;
*) echo "unknown kernel $KERNEL" >&2; exit 2 ;;
esac
MEM=1G
APPEND="console=ttyS0 panic=-1 rdinit=/init harness.case=$CASE"
case "$CASE" in
rcustall) APPEND+=" rcupdate.rcu_cpu_stall_timeout=3 nowatchdog" ;;
hardlockup) APPEND+=" rcupdate.rcu_cpu_stall_timeout=3" ;;
kfence) APPEND+=" kfence.sample_interval=1" ;;
panic_oops) APPEND+=" oops=panic" ;;
oom) MEM=256M ;;
esac

ROOT=$WORK/root-$KVER-$CASE
rm -rf "$ROOT" && mkdir -p "$ROOT"/{bin,proc,sys,dev}
cp /bin/busybox "$ROOT/bin/busybox"
cp "$SRC/init.sh" "$ROOT/init" && chmod +x "$ROOT/init"
# noinit: an /init that cannot be executed -> "No working init found" panic.
[ "$CASE" = noinit ] && printf '#!/bin/missing-shell\n' >"$ROOT/init"
HDR=/usr/src/linux-headers-$KVER
if [ -d "$HDR" ]; then
	BUILD=$WORK/build-$KVER
	mkdir -p "$BUILD" && cp "$SRC/harness_oops.c" "$SRC/Kbuild" "$BUILD/"
	make -s -C "$HDR" M="$BUILD" modules >&2
	cp "$BUILD/harness_oops.ko" "$ROOT/"
fi
gcc -static -O1 -o "$ROOT/hog" "$SRC/hog.c"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initrd-$KVER-$CASE.gz"

timeout 150 qemu-system-x86_64 -accel tcg -m "$MEM" -smp 2 -nographic -no-reboot \
	-kernel "$VMLINUZ" -initrd "$WORK/initrd-$KVER-$CASE.gz" -append "$APPEND" \
	</dev/null >"$OUT" 2>&1 || echo "qemu exit $?" >&2
