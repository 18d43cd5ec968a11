#!/bin/busybox sh
# /init of the harness guest: mount, load network modules, start sshd, say ready.
# The host waits for the ready line on the serial console; it carries the
# boot's nonce (from the kernel command line) so a stale line cannot match.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /tmp /root /var/run /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /dev/shm
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
hostname guest
nonce=$(sed -n 's/.*harness\.nonce=\([^ ]*\).*/\1/p' /proc/cmdline)
thp=$(sed -n 's/.*harness\.thp=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$thp" ] && [ -w /sys/kernel/mm/transparent_hugepage/enabled ] && \
    echo "$thp" > /sys/kernel/mm/transparent_hugepage/enabled
for m in $(cat /etc/harness/modules 2>/dev/null); do
    insmod "/lib/harness-modules/$m.ko" || echo "HARNESS-WARN insmod $m failed"
done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
chmod 700 /root /root/.ssh
chmod 600 /root/.ssh/authorized_keys
dropbear -r /etc/dropbear/host_key -p 22 -s -P /run/dropbear.pid
echo "HARNESS-READY $nonce taint=$(cat /proc/sys/kernel/tainted) release=$(uname -r)"
while :; do sleep 3600; done
