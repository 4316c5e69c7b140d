#!/bin/busybox sh
# /init of the test guest (busybox).  COWSNAP_MODE (from the kernel command
# line) is "test", "shell" or "demo".  Test results go to /dev/ttyS1, the
# kernel console to ttyS0; a marker in the kernel log names each test program.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
echo 60 > /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
hostname cowsnap-vm

insmod /lib/modules/cowsnap.ko || echo "init: insmod failed" > /dev/ttyS1

case "$COWSNAP_MODE" in
test)
	out=/dev/ttyS1
	echo "BEGIN $(uname -r)" > $out
	for t in /tests/test_*; do
		[ -x "$t" ] || continue
		echo "cowsnap-test: start ${t##*/}" > /dev/kmsg
		timeout -s KILL ${COWSNAP_PROG_TIMEOUT:-900} "$t" $COWSNAP_FILTER > $out 2>&1 ||
			echo "EXIT ${t##*/} $?" > $out
		echo "cowsnap-test: end ${t##*/}" > /dev/kmsg
	done
	echo "END" > $out
	;;
bench)
	for b in /bin/bench_*; do "$b" > /dev/ttyS1 2>&1; done
	echo "END" > /dev/ttyS1
	;;
demo)
	sh /demo.sh > /dev/ttyS1 2>&1
	echo "END" > /dev/ttyS1
	;;
*)
	echo "cowsnap guest: /dev/cowsnap is loaded; 'poweroff -f' to leave."
	setsid cttyhack sh
	;;
esac
sync
poweroff -f
