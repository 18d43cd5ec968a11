#!/bin/busybox sh
# /init of the harness guest: mount, load network modules, start sshd, say ready.
# A template: harness/guest/protocol.py fills in the protocol's lines.
# The host waits for the ready line on the serial console; it carries the
# boot's nonce (from the kernel command line) so a stale line cannot match.
# Every fork costs under TCG: builtins (read, case) are used where they can be,
# and the busybox applet links come ready-made in the image.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
read -r cmdline < /proc/cmdline
nonce=
for word in $cmdline; do
    case $word in
        harness.nonce=*) nonce=${word#harness.nonce=} ;;
        harness.thp=*) echo "${word#harness.thp=}" > /sys/kernel/mm/transparent_hugepage/enabled ;;
    esac
done
if [ -f /etc/harness/modules ]; then
    while read -r m; do
        insmod "/lib/harness-modules/$m.ko" || echo "HARNESS-WARN insmod $m failed" > /dev/kmsg
    done < /etc/harness/modules
fi
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
dropbear -r /etc/dropbear/host_key -p 22 -s -P /run/dropbear.pid
read -r taint < /proc/sys/kernel/tainted
read -r release < /proc/sys/kernel/osrelease
# Through /dev/kmsg, not the tty: a printk record reaches the console whole,
# while a tty write can be split by a kernel line printed in its middle
# ("release=6.12.117+deb12-amd64[    2.129029] tsc: ..." cost a CI run 180 s).
# The ready line's words come from harness/guest/protocol.py, which renders
# this template.
echo "@HARNESS_READY_LINE@" > /dev/kmsg || echo "@HARNESS_READY_LINE@"
# Later, out of the boot path: every sysrq key (the host may send sysrq-w via
# QEMU's keyboard when SSH is dead), debugfs for reproducers that want it.
echo 1 > /proc/sys/kernel/sysrq
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tmpfs tmpfs /dev/shm
while :; do sleep 3600; done
