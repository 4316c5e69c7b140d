#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The verdicts of one test guest (scripts/vm.sh KERNEL test), for
# scripts/check.sh and scripts/package-test.sh to count:
#   scripts/guest-results.sh DIR
# DIR holds the guest's results.log and console.log (build/KERNEL).  Prints
# the guest's PASS/FAIL/SKIP lines; FAIL for a program that exited with a
# status other than 1 and for a guest that did not finish; then
# "PASS kernel-log-clean" or a FAIL quoting the kernel's reports.  Other
# lines are indented.
set -uo pipefail
b=$1

# Kernel log lines that fail a run: reports, not boot chatter.
# "Disabling lock debugging" means lockdep was off for the rest of the run.
bad='WARNING:|BUG:|BUG [a-z]|Oops|KASAN|KFENCE:|general protection|refcount_t|lockdep|possible (circular|recursive) locking|inconsistent lock state|Bad page|Call Trace|soft lockup|blocked for more than|Poison overwritten|Redzone|Object padding|Kernel panic|list_(add|del) corruption|Disabling lock debugging|UBSAN'

while read -r verdict name rest; do
	case $verdict in
	PASS) echo "PASS $name" ;;
	FAIL) echo "FAIL $name $rest" ;;
	SKIP) echo "SKIP $name $rest" ;;
	EXIT) [ "$rest" = 1 ] || echo "FAIL $name exited $rest" ;;
	BEGIN|END) ;;
	*) echo "     $verdict $name $rest" ;;
	esac
done < <(tr -d '\r' < "$b/results.log" 2>/dev/null)
if ! grep -q '^END' "$b/results.log" 2>/dev/null; then
	echo "FAIL guest did not finish; last kernel messages:"
	tail -n 30 "$b/console.log" 2>/dev/null | sed 's/^/    /'
fi
if tr -d '\r' < "$b/console.log" 2>/dev/null |
	grep -v 'Kernel command line:\|Command line:' |
	grep -E "$bad" > "$b/kernel-reports.log"; then
	echo "FAIL kernel log has reports (${b#"$PWD"/}/console.log):"
	head -n 40 "$b/kernel-reports.log" | sed 's/^/    /'
else
	echo "PASS kernel-log-clean"
fi
