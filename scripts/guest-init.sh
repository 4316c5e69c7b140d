#!/bin/busybox sh
# /init of the test guest (busybox).  COWSNAP_MODE (from the kernel command
# line) is "test", "shell", "demo", "bench" or "examples".  Test results go to
# /dev/ttyS1, the kernel console to ttyS0; a marker in the kernel log names
# each test program.  Other COWSNAP_* words of the command line (seed,
# fuzz calls, stress seconds) reach the programs as environment variables.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
echo 60 > /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
hostname cowsnap-vm
leaks=/sys/kernel/debug/kmemleak
# Only the manual scans below judge leaks: boot-time suspects are not ours.
[ -e $leaks ] && { echo scan=off > $leaks; echo clear > $leaks; }

insmod /lib/modules/cowsnap.ko || echo "init: insmod failed" > /dev/ttyS1

# Print "PASS name" or "FAIL name: ..." for the kmemleak scan: suspects
# whose trace matches $2 (an extended regex) fail.
leak_check() {
	[ -e $leaks ] || return 0
	# Objects younger than 5 s are never reported: scan, wait, scan.
	echo scan > $leaks; sleep 6; echo scan > $leaks
	if grep -qE "$2" $leaks; then
		echo "FAIL guest.$1: kmemleak suspects from cowsnap:"
		sed 's/^/    /' $leaks | head -n 60
	else
		echo "PASS guest.$1"
	fi
	echo clear > $leaks
}

case "$COWSNAP_MODE" in
test)
	out=/dev/ttyS1
	echo "BEGIN $(uname -r)" > $out
	for t in /tests/*; do
		[ -x "$t" ] || continue
		echo "cowsnap-test: start ${t##*/}" > /dev/kmsg
		timeout -s KILL ${COWSNAP_PROG_TIMEOUT:-900} "$t" $COWSNAP_FILTER > $out 2>&1 ||
			echo "EXIT ${t##*/} $?" > $out
		echo "cowsnap-test: end ${t##*/}" > /dev/kmsg
	done
	if [ -z "$COWSNAP_FILTER" ]; then
		# Every test cleaned up: no region, handle or fd holds the module.
		leak_check kmemleak_loaded 'cowsnap' > $out
		if rmmod cowsnap 2> /tmp/rmmod.err; then
			echo "PASS guest.module_unloads_after_tests" > $out
		else
			echo "FAIL guest.module_unloads_after_tests: $(cat /tmp/rmmod.err)" > $out
			sed 's/^/    /' /proc/cowsnap > $out
		fi
		# After unload the module's frames print as bare addresses.
		leak_check kmemleak_unloaded '\] 0xffffffff[0-9a-f]+$' > $out
	fi
	if [ -e /proc/lockdep_stats ]; then
		if grep -qE 'debug_locks: +1' /proc/lockdep_stats; then
			echo "PASS guest.lockdep_stayed_on" > $out
		else
			echo "FAIL guest.lockdep_stayed_on: lockdep switched itself off" > $out
		fi
	fi
	echo "END" > $out
	;;
bench)
	for b in /bin/bench_*; do "$b" > /dev/ttyS1 2>&1; done
	echo "END" > /dev/ttyS1
	;;
examples)
	# The examples' measured runs (make examples), one after another.
	for e in /bin/example_*; do
		[ -x "$e" ] || continue
		echo "== ${e##*/}" > /dev/ttyS1
		timeout -s KILL ${COWSNAP_PROG_TIMEOUT:-900} "$e" > /dev/ttyS1 2>&1 ||
			echo "EXIT ${e##*/} $?" > /dev/ttyS1
	done
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
# Nothing here is on a disk; and a task stuck in the kernel (a failed test)
# would hang sync(), keeping the guest up until the host's timeout.
poweroff -f -n
