#!/bin/bash
# Capture the debug kernel's logs (kernels-debug.yaml, trigger.sh 6.12-debug):
# LKDTM and harness_debug.ko triggers, one boot each (lockdep reports once
# per boot), one QEMU at a time.  About a minute a case under TCG.
#   capture_debug.sh [CASE...]     (default: all)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CASES=(
	lkdtm_warning lkdtm_bug lkdtm_exception lkdtm_write_ro lkdtm_refcount_inc_overflow
	lkdtm_usercopy_slab_size_to lkdtm_array_bounds lkdtm_corrupt_list_add
	lkdtm_write_after_free lkdtm_slab_linear_overflow lkdtm_slab_free_double
	lkdtm_hung_task lkdtm_softlockup lkdtm_spinlockup
	dbg_circular dbg_recursive dbg_unbalance dbg_heldfree dbg_userheld dbg_exitheld dbg_rcu
	dbg_nonstatic dbg_inconsistent dbg_atomicsleep dbg_odebug dbg_kobj dbg_procdup dbg_kvm
	dbg_leak dbg_shift dbg_bounds dbg_uafread dbg_oobwrite dbg_dfree dbg_netdev dbg_stall
	reboot
)
[ $# -gt 0 ] && CASES=("$@")
for c in "${CASES[@]}"; do
	"$HERE/make_log.sh" 6.12-debug "$c"
done
