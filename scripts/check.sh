#!/usr/bin/env bash
# The whole test run: set up, build for every kernel, boot each one under
# TCG, run every test program, check the guest kernel log.  Prints one line
# per test per kernel, then "N passed, N failed".
#   KERNELS="6.1 6.12 dbg" (default: all), FILTER=substring of test names,
#   LINT=0 skips checkpatch/sparse (for quick iterations only).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
CACHE=${COWSNAP_CACHE:-/var/cache/cowsnap}
start=$(date +%s)
# One bench run at a time on this machine (2 cores; shared build/).
exec 9>/tmp/cowsnap-bench.lock
flock 9

echo "check: installing packages and fetching Debian's kernels" >&2
bash scripts/setup.sh > build-setup.log 2>&1 || {
	cat build-setup.log; echo "0 passed, 1 failed"; exit 1; }
# The KASAN + lockdep kernel: built once into the cache (~25 min).
case " ${KERNELS:-dbg} " in
*" dbg "*)
	bash scripts/build-debug-kernel.sh > build-dbg.log 2>&1 || {
		tail -n 40 build-dbg.log; echo "0 passed, 1 failed"; exit 1; }
	rm -f build-dbg.log
	bash scripts/setup.sh > build-setup.log 2>&1 || {
		cat build-setup.log; echo "0 passed, 1 failed"; exit 1; }
	;;
esac
rm -f build-setup.log
KERNELS=${KERNELS:-$(awk '{print $1}' "$CACHE/kernels")}

# Kernel log lines that fail a run: reports, not boot chatter.
# "Disabling lock debugging" means lockdep was off for the rest of the run.
bad='WARNING:|BUG:|BUG [a-z]|Oops|KASAN|KFENCE:|general protection|refcount_t|lockdep|possible (circular|recursive) locking|inconsistent lock state|Bad page|Call Trace|soft lockup|blocked for more than|Poison overwritten|Redzone|Object padding|Kernel panic|list_(add|del) corruption|Disabling lock debugging|UBSAN'

pass=0 fail=0
while read -r verdict name; do
	case $verdict in
	PASS) pass=$((pass + 1)); echo "host PASS $name" ;;
	FAIL) fail=$((fail + 1)); echo "host FAIL $name" ;;
	*) echo "host      $verdict $name" ;;
	esac
done < <([ "${LINT:-1}" = 0 ] || bash scripts/lint.sh 2>&1)
make -s guest-bin >build-make.log 2>&1 || {
	cat build-make.log; echo "0 passed, 1 failed"; exit 1; }
for k in $KERNELS; do
	t0=$(date +%s)
	echo "check: building and booting $k" >&2
	if ! make -s bench-module KERNEL="$k" >build-make.log 2>&1; then
		cat build-make.log
		echo "$k FAIL build"
		fail=$((fail + 1))
		continue
	fi
	bash scripts/mkinitramfs.sh "$k"
	bash scripts/vm.sh "$k" test "${FILTER:-}"
	b=build/$k
	while read -r verdict name rest; do
		case $verdict in
		PASS) pass=$((pass + 1)); echo "$k PASS $name" ;;
		FAIL) fail=$((fail + 1)); echo "$k FAIL $name $rest" ;;
		SKIP) echo "$k SKIP $name $rest" ;;
		EXIT) [ "$rest" = 1 ] || { fail=$((fail + 1)); echo "$k FAIL $name exited $rest"; } ;;
		BEGIN|END) ;;
		*) echo "$k      $verdict $name $rest" ;;
		esac
	done < <(tr -d '\r' < "$b/results.log")
	if ! grep -q '^END' "$b/results.log"; then
		fail=$((fail + 1))
		echo "$k FAIL guest did not finish; last kernel messages:"
		tail -n 30 "$b/console.log" | sed 's/^/    /'
	fi
	if tr -d '\r' < "$b/console.log" | grep -v 'Kernel command line:\|Command line:' |
		grep -E "$bad" > "$b/kernel-reports.log"; then
		fail=$((fail + 1))
		echo "$k FAIL kernel log has reports (build/$k/console.log):"
		head -n 40 "$b/kernel-reports.log" | sed 's/^/    /'
	else
		pass=$((pass + 1))
		echo "$k PASS kernel-log-clean"
	fi
	echo "$k took $(( $(date +%s) - t0 ))s"
done
echo "total $(( $(date +%s) - start ))s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
