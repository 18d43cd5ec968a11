#!/bin/bash
# Re-capture every real-kernel test log (about 10 minutes under TCG; one
# QEMU at a time). Kernels and headers: see trigger.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
for c in boot noise noinit warn bug null gpf pagefault divzero softlockup softlockup2 hardlockup hung \
	rcustall sched_atomic list refcount kfence irq two initoops sysrq panic_oops oom; do
	"$HERE/make_log.sh" 6.12 "$c"
done
for c in boot warn bug null gpf pagefault divzero softlockup hung rcustall sched_atomic list \
	refcount sysrq panic_oops oom; do
	"$HERE/make_log.sh" 6.1 "$c"
done
for c in boot noise sysrq oom; do
	"$HERE/make_log.sh" 7.3 "$c"
done
