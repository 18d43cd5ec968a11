#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# thp_sysfs.sh - the transparent hugepage sysfs interface the THP reproducers rely on.
#
# /sys/kernel/mm/transparent_hugepage/enabled and defrag each show their modes with
# exactly one of them [selected]; writing a mode to enabled selects it (read back,
# then the original mode is restored); hpage_pmd_size is the PMD size, 2 MiB on
# x86-64 with 4 KiB pages.  Runs in the guest's own shell (busybox sh in the QEMU
# backend), printing KTAP and exiting 0 pass, 1 fail, 4 skip.
#
# @timeout: 30
# @needs: config=TRANSPARENT_HUGEPAGE,SYSFS
# @covers: mm/huge_memory.c include/linux/huge_mm.h
# @always: true

THP=/sys/kernel/mm/transparent_hugepage
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "# $2"; echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected '$3', got '$2'"; fi; }

# The mode shown in brackets: "always [madvise] never" -> madvise
selected() { sed -n 's/.*\[\([a-z+]*\)\].*/\1/p' "$1"; }
brackets() { tr -cd '[' < "$1" | wc -c | tr -d ' '; }

echo "TAP version 13"
if [ ! -d "$THP" ]; then
	echo "1..0 # SKIP kernel lacks transparent hugepages (no $THP: CONFIG_TRANSPARENT_HUGEPAGE)"
	exit 4
fi
echo "1..6"

check "enabled shows exactly one selected mode" "$(brackets $THP/enabled)" 1
check "defrag shows exactly one selected mode" "$(brackets $THP/defrag)" 1

original=$(selected $THP/enabled)
echo "# enabled: $(cat $THP/enabled) (selected: $original)"
for mode in never always; do
	if echo "$mode" > $THP/enabled; then
		check "writing '$mode' to enabled selects it" "$(selected $THP/enabled)" "$mode"
	else
		not_ok "writing '$mode' to enabled selects it" "the write failed"
	fi
done
echo "$original" > $THP/enabled
check "the original mode is restored" "$(selected $THP/enabled)" "$original"

pmd=$(cat $THP/hpage_pmd_size 2>/dev/null)
case "$(uname -m)" in
x86_64) check "hpage_pmd_size is 2 MiB" "$pmd" 2097152 ;;
*) ok "hpage_pmd_size is $pmd # SKIP only checked on x86_64" ;;
esac

echo "# totals: pass:$((n - failed)) fail:$failed skip:0"
[ "$failed" -eq 0 ] || exit 1
exit 0
