#!/bin/sh
# The virtme backend's guest script: run by virtme-ng-init as --script-sh once
# the host's root is mounted, it plays the part init.sh plays in our own
# initramfs.  It brings up the NIC QEMU forwards SSH to, starts the host's
# dropbear with this run's pinned host key, says ready on the kernel console
# and then waits forever (the guest powers off when this script ends).
# Usage: sh virtme-guest.sh NONCE HOST_KEY AUTHORIZED_KEYS [THP_MODE]
# Every path is a host path: the guest sees the host's root read-only.
# A template: harness/guest/protocol.py fills in the protocol's lines and the
# backend runs the rendered copy from the boot directory.
nonce=$1 host_key=$2 authorized=$3 thp=${4:-}
say() { echo "$*" > /dev/kmsg 2>/dev/null || echo "$*"; }
echo 1 > /proc/sys/kernel/sysrq
[ -n "$thp" ] && echo "$thp" > /sys/kernel/mm/transparent_hugepage/enabled
# udev has renamed the one virtio NIC (enp0s..); take whatever is not lo.
modprobe -q virtio_net 2>/dev/null
dev=
for d in /sys/class/net/*; do
    d=${d##*/}
    [ "$d" = lo ] || { dev=$d; break; }
done
ip link set lo up
if [ -n "$dev" ]; then
    ip link set "$dev" up
    ip addr add 10.0.2.15/24 dev "$dev"
    ip route add default via 10.0.2.2
else
    say "HARNESS-WARN no network interface"
fi
# /root is the host's, read-only, and may have no .ssh at all (a fresh
# machine): root gets a home of its own on the writable /tmp overlay, with
# only this run's key.  /etc is a tmpfs overlay, so the passwd edit stays in
# the guest.  The shell becomes /bin/sh: the host's bash would source the
# host's ~/.bashrc for every SSH command (slow under TCG, and not ours).
home=/tmp/harness-root
mkdir -p "$home/.ssh" && chmod 700 "$home" "$home/.ssh"
cp "$authorized" "$home/.ssh/authorized_keys" && chmod 600 "$home/.ssh/authorized_keys" ||
    say "HARNESS-WARN no authorized_keys in $home"
sed -i "s|^\(root:[^:]*:[^:]*:[^:]*:[^:]*\):[^:]*:.*\$|\1:$home:/bin/sh|" /etc/passwd
/usr/sbin/dropbear -r "$host_key" -p 22 -s -P /run/dropbear.pid || say "HARNESS-WARN dropbear failed"
# $(cat): the shell's read builtin reads byte-wise and an int sysctl gives
# EOF at a non-zero offset ("5" for 512).
taint=$(cat /proc/sys/kernel/tainted)
release=$(uname -r)
say "@HARNESS_READY_LINE@"  # the words: harness/guest/protocol.py renders this template
while :; do sleep 3600; done
