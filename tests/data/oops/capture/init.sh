#!/bin/busybox sh
# /init of the throwaway capture initramfs (busybox). Reads harness.case=NAME
# from the kernel command line, provokes that report, then powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
CASE=$(sed -n 's/.*harness\.case=\([a-z_0-9]*\).*/\1/p' /proc/cmdline)
echo "harness: case=$CASE"
[ -f /harness_oops.ko ] && insmod /harness_oops.ko
[ -f /harness_debug.ko ] && insmod /harness_debug.ko
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
trig() {
	# Trigger from a child shell: an oops then kills the child, not init.
	sh -c "echo $1 > /proc/harness_oops"
	echo "harness: trigger $1 returned $?"
}
# the debug kernel (trigger.sh 6.12-debug): LKDTM and harness_debug.ko
lkdtm() {
	sh -c "echo $1 > /sys/kernel/debug/provoke-crash/DIRECT"
	echo "harness: lkdtm $1 returned $?"
}
dbg() {
	sh -c "echo $1 > /proc/harness_debug"
	echo "harness: debug $1 returned $?"
}
# a trigger that never returns (hangs, stalls): wait for its reports, then stop
late() {
	"$@" &
	sleep "$WAIT"
	echo "harness: done"
	poweroff -f
}
WAIT=30
case "$CASE" in
lkdtm_hung_task)
	echo 5 > /proc/sys/kernel/hung_task_timeout_secs
	late lkdtm HUNG_TASK ;;
lkdtm_softlockup)
	echo 1 > /proc/sys/kernel/watchdog_thresh
	WAIT=20 late lkdtm SOFTLOCKUP ;;
# takes a spinlock and keeps it: a second write would spin for good
lkdtm_spinlockup) WAIT=20 late lkdtm SPINLOCKUP ;;
lkdtm_*) lkdtm "$(echo "${CASE#lkdtm_}" | tr a-z A-Z)" ;;
dbg_stall | dbg_netdev) late dbg "${CASE#dbg_}" ;;
dbg_leak)
	dbg leak
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	sleep 1
	echo scan > /sys/kernel/debug/kmemleak
	# what syzkaller's executor does: the leak reports into the kernel log
	while IFS= read -r line; do echo "$line" > /dev/kmsg; done < /sys/kernel/debug/kmemleak ;;
dbg_*) dbg "${CASE#dbg_}" ;;
reboot) echo b > /proc/sysrq-trigger ;;
boot) ;;
noise)
	# Userspace text on the console that looks like reports but is not
	# kernel output (no printk timestamp): the parser must not match it.
	echo "WARNING: CPU: 0 PID: 1 at fake.c:1 fake_func+0x0/0x10"
	echo "BUG: this line was printed by userspace"
	echo "Kernel panic - not syncing: userspace text"
	echo "INFO: task sh:1 blocked for more than 3 seconds." ;;
softlockup2)
	# Both CPUs spin at once: two watchdog reports whose lines interleave.
	echo 1 > /proc/sys/kernel/watchdog_thresh
	trig softlockup & trig softlockup; wait ;;
two) trig warn; trig null ;;
softlockup) echo 1 > /proc/sys/kernel/watchdog_thresh; trig softlockup ;;
hung)
	echo 3 > /proc/sys/kernel/hung_task_timeout_secs
	echo 12 > /sys/module/harness_oops/parameters/spin_secs
	trig hung ;;
rcustall) trig softlockup ;;
hardlockup) echo 1 > /proc/sys/kernel/watchdog_thresh; trig hardlockup ;;
initoops) echo null > /proc/harness_oops ;;
sysrq) echo c > /proc/sysrq-trigger ;;
oom) /hog; echo "harness: hog exited $?" ;;
panic_oops) trig null ;;
*) trig "$CASE" ;;
esac
sleep 1
echo "harness: done"
poweroff -f
