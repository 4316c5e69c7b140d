#!/usr/bin/env bash
# Static checks: checkpatch.pl --strict (from Debian's linux-source-6.1),
# sparse (C=2) and W=1 -Werror builds against every bench kernel.
# Prints "PASS lint.<check>" or "FAIL lint.<check>" lines (with the
# offending output) and exits non-zero if any failed.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${COWSNAP_CACHE:-/var/cache/cowsnap}
cd "$top"
rc=0

cp_dir=$CACHE/checkpatch
if [ ! -x "$cp_dir/scripts/checkpatch.pl" ]; then
	tarball=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n 1)
	if [ -z "$tarball" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
			--no-install-recommends linux-source-6.1 >/dev/null
		tarball=$(ls /usr/src/linux-source-6.1.tar.* | head -n 1)
	fi
	rm -rf "$cp_dir" && mkdir -p "$cp_dir"
	tar -C "$cp_dir" --strip-components=1 -xaf "$tarball" \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
fi
run_checkpatch() { perl "$cp_dir/scripts/checkpatch.pl" --no-tree --terse -f "$@" 2>&1 |
	grep -v '^total: 0 errors, 0 warnings, 0 checks'; }
# The tracepoint header keeps the TRACE_EVENT() layout of the kernel's own
# (its "line ends with (" checks are --strict only).
out=$(run_checkpatch --strict $(ls module/*.c module/*.h | grep -v _trace.h) \
	include/uapi/linux/cowsnap.h; run_checkpatch module/cowsnap_trace.h)
if [ -n "$out" ]; then
	echo "FAIL lint.checkpatch"; echo "$out" | sed 's/^/    /'; rc=1
else
	echo "PASS lint.checkpatch"
fi

# README.md's bench summary is what scripts/bench-report.sh makes of the
# logs in docs/bench/logs: a hand edit or a summary left stale fails.
if ls docs/bench/logs/*.log >/dev/null 2>&1; then
	t=$(mktemp -d)
	cp README.md "$t/README.md"
	if BENCH_OUT=$t BENCH_PLOTS=0 BENCH_README=$t/README.md bash scripts/bench-report.sh \
		$(ls docs/bench/logs/*.log | grep -v '\.console\.log$' | sort -V) 2>"$t/err" &&
		grep -q 'rewrote the bench summary' "$t/err" && cmp -s README.md "$t/README.md"; then
		echo "PASS lint.bench-summary"
	else
		echo "FAIL lint.bench-summary (run make bench, or scripts/bench-report.sh docs/bench/logs/*.log)"
		{ cat "$t/err"; diff README.md "$t/README.md"; } | sed 's/^/    /'; rc=1
	fi
	rm -rf "$t"
fi

while read -r short abi _ _ kdir; do
	[ "$short" = dbg ] && continue	# no Module.symvers: modpost warns
	d=build/lint-$short
	rm -rf "$d" && mkdir -p "$d"
	cp -r Kbuild module include "$d/"
	log=$(make -C "$kdir" M="$top/$d" W=1 C=2 KCFLAGS=-Werror modules 2>&1)
	status=$?
	out=$(echo "$log" | grep -iE 'warning|error|sparse' | grep -v 'Skipping BTF')
	if [ "$status" -ne 0 ] || [ -n "$out" ]; then
		[ -n "$out" ] || out=$(echo "$log" | tail -n 5)
		echo "FAIL lint.sparse-w1-$short"; echo "$out" | sed 's/^/    /'; rc=1
	else
		echo "PASS lint.sparse-w1-$short"
	fi
done < "$CACHE/kernels"
exit $rc
