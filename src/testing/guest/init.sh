#!/bin/busybox sh
# PID 1 of the test guest. No udev and no systemd: mount the kernel filesystems, load the virtio
# modules in dependency order, mount the data disk (and a second one, /dev/vdb, when present), link the agent's port by name, start the agent
# and the workload chosen on the kernel command line, then reap children forever.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# qemu-ga writes its pid file under /var/run and dies silently after daemonizing without it.
mkdir -p /var/run /run /tmp /mnt /mnt2 /dev/virtio-ports

say() { echo "SNAPGUEST $*" > /dev/console; }

workload=idle agent=on rate=1024
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    snap.workload=*) workload="${arg#snap.workload=}" ;;
    snap.agent=*) agent="${arg#snap.agent=}" ;;
    snap.rate=*) rate="${arg#snap.rate=}" ;;
  esac
done

for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk virtio_console; do
  insmod "/lib/modules/$m.ko" || say "insmod $m failed"
done

i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if mount -t ext4 -o data=ordered /dev/vda /mnt; then say "data disk mounted"; else say "data disk missing"; fi
# lockstep writes to both disks: give the second one the time the first had
if [ "$workload" = lockstep ]; then
  i=0
  while [ ! -b /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
fi
second=absent
if [ -b /dev/vdb ]; then
  if mount -t ext4 -o data=ordered /dev/vdb /mnt2; then second=mounted; say "second data disk mounted"; else say "second data disk not mounted"; fi
fi

for port in /sys/class/virtio-ports/*; do
  [ -e "$port/name" ] || continue
  ln -sf "/dev/${port##*/}" "/dev/virtio-ports/$(cat "$port/name")"
done

say "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
if [ "$agent" = on ] && [ -e /dev/virtio-ports/org.qemu.guest_agent.0 ]; then
  /usr/sbin/qemu-ga -d -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -f /var/run/qemu-ga.pid && say "agent started"
fi

case "$workload" in
  log) /bin/snapwl log /mnt/log --rate-kib "$rate" > /dev/console 2>&1 & ;;
  blocks) /bin/snapwl blocks /mnt/blocks --rate-kib "$rate" > /dev/console 2>&1 & ;;
  lockstep)
    if [ "$second" = mounted ]; then
      /bin/snapwl lockstep /mnt/log /mnt2/log --rate-kib "$rate" > /dev/console 2>&1 &
    else
      say "lockstep needs a second data disk (/dev/vdb)"
      workload=idle
    fi
    ;;
  *) workload=idle ;;
esac
say "ready workload=$workload"

while true; do wait; sleep 1; done
