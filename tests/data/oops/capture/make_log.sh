#!/bin/bash
# Capture one case and store it as a test log: tests/data/oops/KERNEL-CASE.log
# with a SOURCE header. Fill in the expectations afterwards with
#   OOPS_UPDATE=1 python -m pytest -q tests/unit/test_oops.py -p no:cacheprovider
# and review the diff of the header lines before committing.
#
#   make_log.sh KERNEL CASE     e.g. make_log.sh 6.12 warn
set -euo pipefail
KERNEL=$1 CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(cd "$HERE/.." && pwd)/$KERNEL-$CASE.log
RAW=$(mktemp)
"$HERE/trigger.sh" "$KERNEL" "$CASE" "$RAW"
NOTE=$(awk -v a="$KERNEL-$CASE: " -v b="$CASE: " \
	'index($0, a) == 1 { print substr($0, length(a) + 1); exit }
	 index($0, b) == 1 { n = substr($0, length(b) + 1) } END { if (n) print n }' "$HERE/notes.txt" | head -n1)
MACHINE=
[[ $KERNEL == *-arm64* ]] && MACHINE=" (qemu-system-aarch64 virt, cortex-a57)"
KVER=$(sed -n 's/.*Linux version \([^ ]*\).*/\1/p' "$RAW" | head -n1)
ORIGIN="Debian $KVER"
[[ $KERNEL == *-arm64-built ]] && ORIGIN="an arm64 kernel the harness cross-built from linux-source-6.12" \
	&& ORIGIN+=" (tinyconfig + harness/kernels/guest-arm64.config), kernel $KVER"
[[ $KERNEL == *-debug ]] && ORIGIN="the debug kernel the harness builds from linux-source-6.12" \
	&& ORIGIN+=" (tinyconfig + guest.config + capture/debug.config: kernels-debug.yaml), kernel $KVER"
# the debug kernel's boot is long: keep its banner, then from the trigger on
# (a reboot: up to a few lines past the second banner)
if [[ $KERNEL == *-debug ]]; then
	awk '/Linux version/ { n++; if (n == 1) print; else { print; tail = 5 }; next }
	     /harness: case=/ { on = 1 }
	     on && tail == "" { print; next }
	     on && tail > 0 { print; if (--tail == 0) exit }' "$RAW" >"$RAW.trim"
	mv "$RAW.trim" "$RAW"
fi
{
	echo "SOURCE: $ORIGIN, QEMU TCG -smp 2$MACHINE, captured $(date -u +%F)" \
		"with tests/data/oops/capture/trigger.sh $KERNEL $CASE"
	[ -n "$NOTE" ] && echo "NOTE: $NOTE"
	echo
	cat "$RAW"
} >"$OUT"
rm -f "$RAW"
echo "wrote $OUT"
