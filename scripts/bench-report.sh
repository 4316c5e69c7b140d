#!/usr/bin/env bash
# Turn the guest output of `make bench` into docs/bench/results.md and two
# gnuplot PNGs (snapshot time vs resident size, slab per snapshot vs k).
#   scripts/bench-report.sh build/bench/6.1.log build/bench/6.12.log
# Each log is a results log of one kernel (tests/bench_cowsnap.c output);
# its kernel log, if kept as LOG's .console.log sibling, is checked for
# reports.  The label of a run is the log's file name without .log.
# BENCH_OUT (default docs/bench) is where the files go.  With the default,
# the summary between two markers in README.md's Performance section is
# rewritten too; BENCH_README names another file for it (scripts/lint.sh
# checks that README.md holds what docs/bench/logs give).  BENCH_PLOTS=0
# skips the plots.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$top/docs/bench}

logs=() labels=()
for f in "$@"; do
	if [ ! -s "$f" ]; then
		echo "bench-report: $f is missing or empty, skipped" >&2
		continue
	fi
	logs+=("$f")
	labels+=("$(basename "$f" .log)")
done
if [ ${#logs[@]} -eq 0 ]; then
	echo "usage: $0 RESULTS.log... (e.g. build/bench/6.1.log build/bench/6.12.log)" >&2
	exit 2
fi
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every machine-readable line, prefixed by its run's label.
for i in "${!logs[@]}"; do
	tr -d '\r' < "${logs[$i]}" |
		awk -v L="${labels[$i]}" '/^(INFO|DATA|TARGET|NOTE|ERROR|KLOG) / { print L, $0 }'
done > "$tmp/all"

# Kernel log lines that are reports, not boot chatter (as scripts/check.sh).
bad='WARNING:|BUG:|BUG [a-z]|Oops|KASAN|KFENCE:|general protection|refcount_t|lockdep|possible (circular|recursive) locking|inconsistent lock state|Bad page|Call Trace|soft lockup|blocked for more than|Poison overwritten|Redzone|Object padding|Kernel panic|list_(add|del) corruption|Disabling lock debugging|UBSAN|rcu_preempt detected stall|page allocation failure'

info() {	# info LABEL KEY
	awk -v L="$1" -v K="$2" '$1 == L && $2 == "INFO" && $3 == K {
		$1 = $2 = $3 = ""; sub(/^ +/, ""); v = $0 } END { print v }' "$tmp/all"
}

# The reps of run LABEL as shown: "5", or "5 (3 at ≥ 1024 MiB)" when
# fewer ran at the large sizes (which keeps a run within ~25 minutes of TCG).
run_reps() {	# run_reps LABEL
	local reps rl rlmib
	reps=$(info "$1" reps)
	read -r rl rlmib _ <<< "$(info "$1" reps_large) x"
	[ -z "$rl" ] || [ "$rl" = "$reps" ] || reps="$reps ($rl at ≥ $rlmib MiB)"
	echo "$reps"
}

# Whole minutes of TCG that run LABEL's parts took.
run_minutes() {	# run_minutes LABEL
	awk -v L="$1" '$1 == L && $2 == "INFO" && $3 ~ /^part[0-9]+_seconds$/ { s += $4 }
		END { print int(s / 60) }' "$tmp/all"
}

# ---- the plots ----
have_gnuplot=${BENCH_PLOTS:-1}
if [ "$have_gnuplot" = 1 ] && ! command -v gnuplot >/dev/null 2>&1; then
	echo "bench-report: installing gnuplot-nox" >&2
	{ apt-get -o DPkg::Lock::Timeout=900 install -y gnuplot-nox || { apt-get -o DPkg::Lock::Timeout=900 update && apt-get -o DPkg::Lock::Timeout=900 install -y gnuplot-nox; }; } \
		>"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; have_gnuplot=0; }
	command -v gnuplot >/dev/null 2>&1 || have_gnuplot=0
fi

# Per run: size fork4k forkthp uffdwp cowsnap cowsnap-unmapped (µs), and
# the slab table.
n=${#labels[@]}
for L in "${labels[@]}"; do
	awk -v L="$L" '$1 == L && $2 == "DATA" && ($3 == 1 || $3 == 2) && $7 == "time_us" {
		sz[$5] = 1; v[$5, $6] = $8 }
		# The first snapshot of a region written with pwrite(), never
		# mapped (part 3 (a)): no PTE to walk.
		$1 == L && $2 == "DATA" && $3 == 3 && $6 == "a:k=1" && $7 == "own_first_us" {
		sz[$5] = 1; v[$5, "unmapped"] = $8 }
		END {
			for (s in sz) {
				line = s
				split("fork4k forkthp uffdwp cowsnap unmapped", m, " ")
				for (i = 1; i <= 5; i++)
					line = line " " (((s, m[i]) in v) && v[s, m[i]] !~ /nan/ ? v[s, m[i]] : "NaN")
				print line
			}
		}' "$tmp/all" | sort -n > "$tmp/snap-$L.dat"
	# k slab(a) slab(b) slab(c) meta(a) meta(b) meta(c) at 256 MiB or the
	# size nearest to it.
	size=$(awk -v L="$L" '$1 == L && $2 == "DATA" && $3 == 3 { print $5 }' "$tmp/all" |
		sort -un | awk '{ d = $1 - 256; d = d < 0 ? -d : d; if (NR == 1 || d < bd) { bd = d; b = $1 } } END { print b }')
	echo "${size:-0}" > "$tmp/slabsize-$L"
	awk -v L="$L" -v S="${size:-0}" '$1 == L && $2 == "DATA" && $3 == 3 && $5 == S {
		split($6, c, ":k="); var = c[1]; k = c[2]
		if (k == "") next
		ks[k] = 1
		if ($7 == "slab_per_snap") slab[var, k] = $8
		if ($7 == "meta_per_snap") meta[var, k] = $8
	}
	function pos(x) { return (x != "" && x !~ /nan/ && x + 0 > 0) ? x : "NaN" }
	END {
		for (k in ks)
			print k, pos(slab["a", k]), pos(slab["b", k]), pos(slab["c", k]),
			      pos(meta["a", k]), pos(meta["b", k]), pos(meta["c", k])
	}' "$tmp/all" | sort -n > "$tmp/slab-$L.dat"
done

plots=0
if [ "$have_gnuplot" = 1 ]; then
	{
		echo "set terminal pngcairo size $((640 * n)),640 font ',10'"
		echo "set output '$out/snapshot-time.png'"
		echo "set datafile missing 'NaN'"
		echo "set multiplot layout 1,$n title 'Point-in-time save of N bytes, fully written (median; QEMU TCG)'"
		echo "set logscale xy 2"
		echo "set format y '%g'"
		echo "set xlabel 'resident size (MiB)'"
		echo "set ylabel 'time (µs)'"
		# Below the plot: the slowest method is the highest at every size.
		echo "set key below"
		echo "set grid"
		for L in "${labels[@]}"; do
			echo "set title 'kernel $L'"
			echo "plot '$tmp/snap-$L.dat' using 1:2 with linespoints title 'fork 4K (MADV\\_NOHUGEPAGE)', \\"
			echo "  '' using 1:3 with linespoints title 'fork THP (MADV\\_HUGEPAGE)', \\"
			echo "  '' using 1:4 with linespoints title 'UFFDIO\\_WRITEPROTECT', \\"
			echo "  '' using 1:5 with linespoints lw 2 title 'cowsnap first snapshot', \\"
			echo "  '' using 1:6 with linespoints dt 2 title 'cowsnap first snapshot, never mapped (pwrite)'"
		done
		echo "unset multiplot"
		echo "set output '$out/slab-per-snapshot.png'"
		echo "set multiplot layout 1,$n title 'Kernel memory per snapshot vs changed pages k (over 50 snapshots, 400 for k=1)'"
		echo "set key top left"
		echo "set logscale xy 2"
		echo "set xlabel 'changed pages between snapshots (k)'"
		echo "set ylabel 'bytes per snapshot'"
		for L in "${labels[@]}"; do
			s=$(cat "$tmp/slabsize-$L")
			# The target, 0.25 byte per resident page, at k=64.
			echo "set title 'kernel $L, $s MiB region'"
			echo "plot '$tmp/slab-$L.dat' using 1:2 with linespoints title 'Slab (a) pwrite, unmapped', \\"
			echo "  '' using 1:3 with linespoints title 'Slab (b) pwrite, idle mapping', \\"
			echo "  '' using 1:4 with linespoints title 'Slab (c) through the mapping', \\"
			echo "  '' using 1:5 with lines dt 2 title 'meta\\_bytes (the same for a, b, c)', \\"
			echo "  '-' using 1:2 with points pt 7 ps 1.5 lc rgb 'black' title 'target at k=64 (0.25 B/resident page)'"
			echo "64 $(awk -v s="$s" 'BEGIN { print 0.25 * s * 256 }')"
			echo "e"
		done
		echo "unset multiplot"
	} > "$tmp/plot.gp"
	if gnuplot "$tmp/plot.gp" 2> "$tmp/gnuplot.err"; then
		plots=1
	else
		echo "bench-report: gnuplot failed:" >&2
		cat "$tmp/gnuplot.err" >&2
	fi
fi

# ---- results.md ----

# A markdown table of part $1: one row per run, size and case, one column
# per metric (in the order the benchmark printed them).
table() {
	awk -v P="$1" -v order="${labels[*]}" '
	function fmt(v,   a) {
		if (v == "") return ""
		if (v ~ /nan|inf/) return "n/a"
		v += 0; a = v < 0 ? -v : v
		if (a >= 1000) return sprintf("%.0f", v)
		if (a >= 100) return sprintf("%.1f", v)
		if (a >= 1) return sprintf("%.2f", v)
		if (a == 0) return "0"
		return sprintf("%.3g", v)
	}
	$2 == "DATA" && $3 == P {
		key = $1 SUBSEP $5 SUBSEP $6
		if (!(key in seen)) { seen[key] = 1; rows[$1, ++nr[$1]] = key }
		if (!($7 in mseen)) { mseen[$7] = 1; met[++nm] = $7 }
		val[key, $7] = $8
	}
	END {
		if (!nm) { print "_No data (part not run or failed)._"; exit }
		h = "| kernel | size MiB | case |"; d = "|---|---:|---|"
		for (i = 1; i <= nm; i++) { h = h " " met[i] " |"; d = d "---:|" }
		print h; print d
		nl = split(order, lab, " ")
		for (l = 1; l <= nl; l++)
			for (r = 1; r <= nr[lab[l]]; r++) {
				key = rows[lab[l], r]; split(key, f, SUBSEP)
				line = "| " f[1] " | " f[2] " | " f[3] " |"
				for (i = 1; i <= nm; i++) line = line " " fmt(val[key, met[i]]) " |"
				print line
			}
	}' "$tmp/all"
}

# Target checks of part $1 (all parts if empty): one row per check and
# size, the measured value and verdict of each run side by side.
targets() {
	awk -v P="${1:-}" -v order="${labels[*]}" '
	# The target of issue 9 a check stands for.
	function issue(part, check) {
		if (part == 2) return "(1)"
		if (part == 3 || part == 4) return "(2)"
		if (part == 5) return check ~ /^control/ ? "(3) control" : "(3)"
		if (part == 6) return check ~ /^uffd/ ? "(6)" : "(4)"
		if (part == 7) return "(6)"
		if (part == 9) return "(5)"
		return "—"
	}
	$2 == "TARGET" && (P == "" || $3 == P) {
		key = $3 SUBSEP $5 SUBSEP $6
		if (!(key in seen)) { seen[key] = 1; keys[++n] = key; tgt[key] = ($8 == "<=" ? "≤ " : "≥ ") $9 }
		v = $7; if (v ~ /nan/) v = "n/a"
		res[key, $1] = v " " ($10 == "MISS" ? "**MISS**" : $10)
		if ($10 == "PASS") pass[$1]++; else miss[$1]++
	}
	END {
		if (!n) { print "_No target checks._"; exit }
		nl = split(order, lab, " ")
		h = "| issue | part | check | size MiB | target |"; d = "|---|---|---|---:|---|"
		for (l = 1; l <= nl; l++) { h = h " " lab[l] " |"; d = d "---|" }
		print h; print d
		for (i = 1; i <= n; i++) {
			split(keys[i], f, SUBSEP)
			line = "| " issue(f[1], f[3]) " | " f[1] " | " f[3] " | " f[2] " | " tgt[keys[i]] " |"
			for (l = 1; l <= nl; l++) {
				r = res[keys[i], lab[l]]
				line = line " " (r == "" ? "—" : r) " |"
			}
			print line
		}
		if (P == "") {
			print ""
			for (l = 1; l <= nl; l++)
				printf "%s: %d met, %d missed or not measured. ", lab[l], pass[lab[l]], miss[lab[l]]
			print ""
		}
	}' "$tmp/all"
}

# NOTE, ERROR and KLOG lines of part $1.
notes() {
	awk -v P="$1" '
	($2 == "NOTE" && $3 == P) { $2 = $3 = $4 = ""; l = $1; $1 = ""; sub(/^ +/, ""); print "- " l ": note: " $0 }
	($2 == "ERROR" && $3 == P) { $2 = $3 = $4 = ""; l = $1; $1 = ""; sub(/^ +/, ""); print "- " l ": **ERROR** " $0 }
	($2 == "KLOG" && $3 == P) { $2 = $3 = $4 = ""; l = $1; $1 = ""; sub(/^ +/, ""); print "- " l ": kernel log after this part: `" $0 "`" }
	' "$tmp/all"
}

# For each missed target, where the time or memory goes, from the
# diagnostics measured beside it (part 10's phase split, part 5's TLB
# flush control, part 3's never-mapped variant, meta_bytes within Slab).
missed() {
	awk -v order="${labels[*]}" '
	function g(l, p, s, c, m,   k) {
		k = l SUBSEP p SUBSEP s SUBSEP c SUBSEP m
		return (k in d && d[k] !~ /nan|inf/) ? d[k] + 0 : ""
	}
	function f(v) {
		if (v == "") return "n/a"
		if (v >= 100 || v <= -100) return sprintf("%.0f", v)
		if (v >= 10 || v <= -10) return sprintf("%.1f", v)
		return sprintf("%.2f", v)
	}
	function pc(v, w) { return (v == "" || w == "" || w == 0) ? "n/a" : sprintf("%.0f%%", 100 * v / w) }
	$2 == "DATA" { d[$1, $3, $5, $6, $7] = $8 }
	$2 == "TARGET" && $10 != "PASS" { k = $1 SUBSEP $3 SUBSEP $5; if (!(k in seen)) { seen[k] = 1; miss[++n] = k } chk[k] = chk[k] " " $6 }
	END {
		if (!n) { print "Every target measured was met."; exit }
		print "Missed (or not measured), and where the cost is:"
		print ""
		nl = split(order, lab, " ")
		for (li = 1; li <= nl; li++) for (i = 1; i <= n; i++) {
			split(miss[i], a, SUBSEP); l = a[1]; p = a[2]; s = a[3]
			if (l != lab[li]) continue
			pre = "- " l ", " s " MiB, part " p " (" substr(chk[miss[i]], 2) "): "
			if (p == 2) {
				w = g(l, 10, s, "cowsnap:wall", "us"); u = g(l, 10, s, "uffdwp:change_protection", "us")
				if (w == "") { print pre "no phase split (part 10 not run at this size)."; continue }
				print pre "the traced snapshot, " f(w) " µs (untraced " f(g(l, 2, s, "cowsnap", "time_us")) \
				    "), is PTE walk 1 (clean) " pc(g(l, 10, s, "cowsnap:walk1_clean", "us"), w) \
				    ", walk 2 (write-protect) " pc(g(l, 10, s, "cowsnap:walk2_wp", "us"), w) \
				    ", walk 3 (clean) " pc(g(l, 10, s, "cowsnap:walk3_clean", "us"), w) \
				    ", xarray passes " pc(g(l, 10, s, "cowsnap:xarray", "us"), w) \
				    " (before the walks " pc(g(l, 10, s, "cowsnap:xa_drain", "us"), w) \
				    ", pin check and marks after them " pc(g(l, 10, s, "cowsnap:xa_pin_marks", "us"), w) ")" \
				    ", rest " pc(g(l, 10, s, "cowsnap:ioctl_other", "us") + g(l, 10, s, "cowsnap:run_other", "us") + g(l, 10, s, "cowsnap:zap", "us"), w) \
				    "; UFFDIO_WRITEPROTECT walks the same PTEs once in " f(u) " µs (each cowsnap walk " \
				    f(g(l, 10, s, "cowsnap:walk1_clean", "vs_uffd_walk")) "×, " f(g(l, 10, s, "cowsnap:walk2_wp", "vs_uffd_walk")) "×, " \
				    f(g(l, 10, s, "cowsnap:walk3_clean", "vs_uffd_walk")) "× that); fork() copies them in " \
				    f(g(l, 10, s, "fork4k:copy_page_range", "us")) " µs; a never-mapped region snapshots in " \
				    f(g(l, 10, s, "unmapped:wall", "us")) " µs."
			} else if (p == 5) {
				print pre "after/before " f(g(l, 5, s, "read", "ratio")) "; a pass after a bare TLB flush of the process is " \
				    f(g(l, 5, s, "read", "flush_ratio")) "× the pass before, and the pass after the snapshot " \
				    f(g(l, 5, s, "read", "snap_vs_flush")) "× that one, with " f(g(l, 5, s, "read", "read_faults_after")) \
				    " cowsnap read faults: the cost is refilling the TLB (QEMU'\''s software TLB under TCG) after the " \
				    "snapshot'\''s write-protect flush, which fork() pays too (its ratio " f(g(l, 5, s, "fork", "ratio")) ")."
			} else if (p == 3) {
				print pre "k=64 snapshot (a) " f(g(l, 3, s, "a:k=64", "snap_us")) " µs, (b) " f(g(l, 3, s, "b:k=64", "snap_us")) \
				    " µs vs the first " f(g(l, 2, s, "cowsnap", "time_us")) " µs; per snapshot Slab (a) " \
				    f(g(l, 3, s, "a:k=64", "slab_per_snap")) " B of which meta_bytes " f(g(l, 3, s, "a:k=64", "meta_per_snap")) \
				    " B (records; the rest is xarray nodes and slab rounding), " f(g(l, 3, s, "a:k=64", "pages_per_snap")) " pages kept."
			} else if (p == 4) {
				print pre "Slab grew " f(g(l, 4, s, "k=1", "slab_growth_mib")) " MiB, meta_bytes " f(g(l, 4, s, "k=1", "meta_growth_mib")) \
				    " MiB over " f(g(l, 4, s, "k=1", "snapshots")) " snapshots (" f(g(l, 4, s, "k=1", "meta_per_snap")) " B each)."
			} else if (p == 6) {
				print pre "cowsnap " f(g(l, 6, s, "cowsnap", "us_per_page")) " µs per page (" f(g(l, 6, s, "cowsnap", "cow_faults_per_page")) \
				    " CoW faults per page), fork CoW " f(g(l, 6, s, "fork", "us_per_page")) ", uffd handler " f(g(l, 6, s, "uffd", "us_per_page")) "."
			} else if (p == 9) {
				print pre "/proc read " f(g(l, 9, s, "proc", "read_us")) " µs vs " f(g(l, 9, s, "proc", "ref_read_us")) " µs for the 4 MiB region in the same rounds (" \
				    f(g(l, 9, s, "proc", "bytes")) " vs " f(g(l, 9, s, "proc", "ref_bytes")) " bytes read); SNAP_LIST " f(g(l, 9, s, "snap_list", "read_us")) " vs " \
				    f(g(l, 9, s, "snap_list", "ref_read_us")) " µs; INFO, O(1) by construction, " f(g(l, 9, s, "info", "vs_4mib")) "× (the noise floor)."
			} else {
				print pre "see part " p " below."
			}
		}
	}' "$tmp/all"
}

section() {	# section PART TITLE DESCRIPTION
	printf '\n## %s\n\n%s\n\n' "$2" "$3"
	table "$1"
	if grep -q "^[^ ]* TARGET $1 " "$tmp/all"; then
		printf '\nTargets:\n\n'
		targets "$1"
	fi
	local nt
	nt=$(notes "$1")
	[ -z "$nt" ] || printf '\n%s\n' "$nt"
}

{
	echo "# cowsnap benchmark results"
	echo
	echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') by \`scripts/bench-report.sh\` from"
	echo "the output of \`make bench\` (\`tests/bench_cowsnap.c\` in a QEMU TCG guest, no"
	echo "debug boot options).  Under TCG absolute times mean little: every cowsnap"
	echo "number is judged by its ratio to a baseline measured in the same guest"
	echo "boot.  Medians; \"spread_pct\" is the interquartile range in percent of the"
	echo "median.  Raw logs: \`docs/bench/logs/KERNEL.log\`.  Module source: a hash of the"
	echo "module's sources as built for the run (runs with different hashes measured"
	echo "different module code)."
	echo
	echo "| run | kernel | module source | guest memory | CPUs | THP | clocksource | sizes MiB | reps | complete | kernel log | duration |"
	echo "|---|---|---|---:|---:|---|---|---|---:|---|---|---:|"
	for i in "${!labels[@]}"; do
		L=${labels[$i]} log=${logs[$i]}
		con=${log%.log}.console.log
		complete=no
		tr -d '\r' < "$log" | grep -q '^END$' && complete=yes
		if [ -s "$con" ]; then
			nbad=$(tr -d '\r' < "$con" | grep -v 'Kernel command line:\|Command line:' | grep -cE "$bad" || true)
			if [ "$nbad" = 0 ]; then klog=clean; else klog="**$nbad report lines**"; fi
		else
			klog="not kept"
		fi
		mem=$(info "$L" mem_total_kib)
		src=$(info "$L" module_src)
		[ -z "$src" ] || src="$src (git $(info "$L" git))"
		echo "| $L | $(info "$L" kernel) | ${src:-unknown} | $(( ${mem:-0} / 1024 )) MiB | $(info "$L" cpus) | $(info "$L" thp_enabled) (defrag $(info "$L" thp_defrag)) | $(info "$L" clocksource) | $(info "$L" sizes_mib) | $(run_reps "$L") | $complete | $klog | $(run_minutes "$L") min |"
	done
	echo
	if grep -q '^[^ ]* INFO reps_large ' "$tmp/all"; then
		echo "\"reps\" counts the repetitions of the large operations: parts 1, 2 and"
		echo "6, part 5 at 1 GiB (15 reps below that), the baselines of parts 7 and 8,"
		echo "and part 10 (at most 3).  At 1 GiB they run fewer times than at the"
		echo "smaller sizes: one rep of parts 1 and 6 there costs over two minutes"
		echo "of TCG, and the default run (about 12 minutes per kernel) must stay"
		echo "within 25 (\`make bench BENCH_REPS=5,5\` runs 5 everywhere, two more"
		echo "reps of each at 1 GiB).  Parts 3, 4, 7, 8 and 9 take medians over their"
		echo "own rounds (50-400 snapshots, 300 restores, 100 diffs, 300 reads)."
		echo
	fi
	echo "## Targets"
	echo
	echo "Issue 9's targets: (1) first snapshot ≤ 1.5× UFFDIO_WRITEPROTECT and ≥ 2×"
	echo "faster than fork() 4K; (2) k=64 snapshot ≤ 0.2× the first, ≤ 0.25 byte of"
	echo "slab per resident page, 4096 snapshots of 1 GiB within 64 MiB of kernel"
	echo "memory; (3) read pass after a snapshot ≤ 1.05× before; (4) first write"
	echo "≤ 1.25× anonymous CoW after fork(); (5) /proc/cowsnap and SNAP_LIST"
	echo "O(records), not O(pages); (6) restore flat in region size, uffd-WP first"
	echo "write ≥ 5× slower than cowsnap's.  \"Flat\" and \"O(records)\" are judged as"
	echo "≤ 1.25× the 4 MiB region's time.  Rows marked control are not issue"
	echo "targets but tell a TCG artefact from a cowsnap cost."
	echo
	targets ""
	echo
	missed
	echo
	if [ "$plots" = 1 ]; then
		echo "![snapshot time vs resident size](snapshot-time.png)"
		echo
		echo "![slab per snapshot vs changed pages](slab-per-snapshot.png)"
		echo
		echo "(Log scales; a Slab delta of zero or less, below what /proc/meminfo resolves, is not drawn.)"
	else
		echo "_Plots not drawn: gnuplot unavailable._"
	fi

	section 1 "1. Point-in-time save baselines" \
"N bytes of anonymous memory, fully written, then saved: \`fork()\` with
MADV_NOHUGEPAGE (4 KiB pages, what Redis recommends), \`fork()\` with
MADV_HUGEPAGE (\`thp_pct\`: AnonHugePages of /proc/self/smaps over N, the
worst rep), UFFDIO_WRITEPROTECT of the range after UFFDIO_REGISTER_MODE_WP
(only the ioctl is timed), and memcpy of N bytes.  \`fork()\` is timed in the
parent while the child sleeps.  Fresh memory for every rep; reps interleaved
with part 2."

	section 2 "2. cowsnap: first snapshot of a fully written mapped region" \
"A fresh region, mapped and fully written through the mapping (every PTE
writable and dirty), then its first snapshot (the SNAP_CREATE ioctl).
\`vs_uffdwp\` = snapshot / UFFDIO_WRITEPROTECT (target ≤ 1.5),
\`fork4k_speedup\` = fork 4K / snapshot (target ≥ 2)."

	section 3 "3. Snapshot after k changed pages" \
"A fully resident region, its first snapshot, then 50 times (400 for k=1): change k pages
(8 bytes each, spread evenly over the region with stride N/k, shifted by a
different offset every round, so rounds mostly change pages no earlier round
changed), take a snapshot.  (a) written with pwrite() and never mapped; (b) mapped, fully
written through the mapping, changes with pwrite() (idle mapping); (c) changes
stored through the mapping.  \`snap_us\`: median of those snapshots;
\`own_first_us\`: this run's first snapshot; \`vs_first\`: snap_us / part 2's
first snapshot (target ≤ 0.2 for k=64 at 256 MiB, (a) and (b)).  Memory: the
growth of Slab (/proc/meminfo) and meta_bytes (/proc/cowsnap) over those
cycles, per snapshot and per resident page (target ≤ 0.25 byte per resident
page for k=64 at 256 MiB); Slab also holds the history's xarray nodes, which
meta_bytes does not count; \`pages_per_snap\`: data pages kept (k expected)."

	section 4 "4. 4096 snapshots, one page changed between each" \
"The 1 GiB region (or the largest size run), fully written, then 4096
snapshots (the max_snapshots default) with one page stored through the
mapping between each.  Growth of Slab and meta_bytes from before the first
snapshot to after the last (target ≤ 64 MiB); snapshot times (the first
includes the full first-snapshot walk); \`release_ms\`: destroy, munmap and
close of the region with its snapshots; \`*_left\`: what stayed after the
release (a leak check; Slab in KiB)."

	section 5 "5. Read pass after a snapshot" \
"A fresh region fully written through its mapping, one warm-up read pass (one
byte per page), then the timed pass before the snapshot and the timed pass
right after it (target: after / before ≤ 1.05).  \`read_faults_after\`: cowsnap
read faults during the second pass.  Controls: \`after_tlb_flush_us\`, a pass
between the two right after a TLB flush of the process and nothing else
(munmap of an unrelated 64-page mapping), \`flush_ratio\` = that / before,
\`snap_vs_flush\` = after / that (checked as \`control:after/after_flush\` with the
same 1.05, not an issue target: under TCG refilling QEMU's software TLB is
what any pass after a flush pays); case \`fork\`: the same passes in the
parent around \`fork()\` of anonymous memory, the baseline."

	section 6 "6. First write to each page after a save" \
"Microseconds per page for one store to every page: cowsnap (a region fully
written, snapshotted), anonymous CoW after \`fork()\` (the parent stores while
the child sleeps; MADV_NOHUGEPAGE), and a userfaultfd-WP handler thread that
copies each faulting page to a save buffer and unprotects it
(UFFDIO_WRITEPROTECT mode 0, which wakes the writer).  \`vs_fork\` target
≤ 1.25; \`uffd_speedup\` = uffd / cowsnap, target ≥ 5."

	section 7 "7. Restore of 16 dirty pages" \
"Regions of 4 MiB and each size, fully resident, one snapshot each; 300 rounds
of: store to the same 16 page indexes (within the first 4 MiB), restore the
snapshot (timed), round by round over the sizes.  \`vs_4mib\`: restore time /
the 4 MiB region's (\"flat\": judged ≤ 1.25); \`memcpy_us\`: copying the whole
region back (part 1's memcpy), \`memcpy_speedup\` = memcpy / restore."

	section 8 "8. Diff of two adjacent snapshots, 64 changed pages" \
"Regions of 4 MiB and each size, fully resident; 100 rounds of: store to 64
pages spread over the region, snapshot, DIFF from the previous snapshot to
this one (timed; every call until \`next\` is 0), round by round over the
sizes.  \`vs_4mib\`: diff time / the 4 MiB region's (\"flat\": judged ≤ 1.25);
\`scan_us\`: without snapshots, memcmp of the region against a saved copy page
by page; \`scan_speedup\` = scan / diff."

	section 9 "9. /proc/cowsnap, SNAP_LIST and INFO: O(records), not O(pages)" \
"A 4 MiB reference region and one of each size side by side, fully resident,
each with 16 snapshots and the same 64 pages stored between them, so the
same records (\`records_both\`: /proc/cowsnap's count for the two).
/proc/cowsnap prints only the regions its reader may read, so two readers
without capabilities (uid 1000; one in group 1000 sees the reference, mode
0604, one in group 0 sees the measured region, mode 0640) take turns: 300
rounds of open, read to the end and close /proc/cowsnap by each, then
SNAP_LIST of every snapshot and INFO of each region, the order alternating.
Interleaving makes drift and host noise hit both sides alike.
\`ref_*\`: the reference in the same rounds; \`bytes\`: what each reader
read; \`vs_4mib\`: time / the reference's (target (5), judged ≤ 1.25 for
/proc/cowsnap and SNAP_LIST; INFO is shown for scale)."

	section 10 "10. Where the first snapshot's time goes" \
"The first snapshot of a fully written mapped region (as part 2), of a region
written with pwrite() and never mapped, UFFDIO_WRITEPROTECT and fork() of the
same amount of anonymous memory, each split into the kernel functions it
calls with ftrace's function_graph tracer, filtered to those few functions
(so tracing adds microseconds, not a per-page cost; compare
\`cowsnap:wall\` with part 2).  A snapshot walks the mapping's PTEs three
times per chunk of 32768 pages: clean_record_shared_mapping_range() records
and cleans dirty PTEs, wp_shared_mapping_range() write-protects,
clean_record_shared_mapping_range() again catches PTEs dirtied in between;
the xarray passes (inlined in cowsnap_snap_take(), split by the
tracer's timestamps into the one before the walks and those after) wait
for racing page_mkwrite()s and find the runs of writable pages, then look
for pinned pages and clear the writable marks.
\`pct_of_op\`: share of the whole call; \`vs_uffd_walk\`: time /
UFFDIO_WRITEPROTECT's change_protection() walk of the same size.  Median of
at most 3 reps; a diagnostic for target (1), no targets of its own."

	echo
	echo "## Errors and kernel log"
	echo
	any=0
	for i in "${!labels[@]}"; do
		L=${labels[$i]} log=${logs[$i]}
		con=${log%.log}.console.log
		if ! tr -d '\r' < "$log" | grep -q '^END$'; then
			any=1
			echo "- $L: the guest did not finish (no END line): $(tr -d '\r' < "$log" | grep '^vm:' | head -n 1)"
		fi
		awk -v L="$L" '$1 == L && $2 == "ERROR" { $1 = $2 = ""; sub(/^ +/, ""); print "- " L ": **ERROR** part " $0 }' "$tmp/all"
		grep -q "^$L ERROR" "$tmp/all" && any=1
		if [ -s "$con" ]; then
			if tr -d '\r' < "$con" | grep -v 'Kernel command line:\|Command line:' | grep -E "$bad" > "$tmp/bad-$L"; then
				any=1
				echo "- $L: kernel log reports ($(basename "$con")):"
				echo
				echo '```'
				head -n 30 "$tmp/bad-$L"
				echo '```'
			fi
		fi
	done
	[ "$any" = 1 ] || echo "None: every part finished and the kernel logs hold no reports."
} > "$out/results.md"

# ---- the README's summary ----

# The targets beside the measured values at 256 MiB and 1 GiB, and part
# 10's phase split, for the block of README.md between the two markers
# below (written only when BENCH_OUT is the default, i.e. a real run).
readme_block() {
	local when= d
	for L in "${labels[@]}"; do
		d=$(info "$L" date)
		[[ "$d" < "$when" ]] || when=$d
	done
	echo "As last measured by \`make bench\` on ${when:-an unrecorded date} (sizes $(info "${labels[0]}" sizes_mib) MiB):"
	for L in "${labels[@]}"; do
		printf -- '%s with the module at git %s, reps %s, %s min of TCG;\n' "$L" "$(info "$L" git)" \
			"$(run_reps "$L")" "$(run_minutes "$L")"
	done
	echo "full tables in [docs/bench/results.md](docs/bench/results.md)."
	echo
	awk -v order="${labels[*]}" '
	$2 == "TARGET" { v[$1, $3, $5, $6] = $7; st[$1, $3, $5, $6] = $10 }
	$2 == "DATA" && $3 == 10 { d[$1, $5, $6, $7] = $8; if ($5 + 0 > big[$1]) big[$1] = $5 + 0 }
	function fmt(x) {
		x += 0
		if (x >= 100) return sprintf("%.0f", x)
		if (x >= 10) return sprintf("%.1f", x)
		if (x >= 0.1) return sprintf("%.2f", x)
		return sprintf("%.2g", x)
	}
	# The range of the checks of run l, part p matching re, at size s
	# (any size if empty), and "(miss)" if one missed.
	function cell(l, p, re, s, unit,   k, a, x, lo, hi, n, miss, r) {
		n = 0; miss = 0
		for (k in v) {
			split(k, a, SUBSEP)
			if (a[1] != l || a[2] != p || (s != "" && a[3] != s) || a[4] !~ re) continue
			if (st[k] != "PASS") miss = 1
			x = v[k]
			if (x ~ /nan/) continue
			x += 0
			if (!n || x < lo) lo = x
			if (!n || x > hi) hi = x
			n++
		}
		if (!n) return miss ? "not measured (miss)" : "—"
		r = fmt(lo)
		if (fmt(hi) != r) r = r "–" fmt(hi)
		return r unit (miss ? " (miss)" : "")
	}
	function two(l, p, re, unit) { return cell(l, p, re, 256, unit) " / " cell(l, p, re, 1024, unit) }
	function row(what, p, re, unit, both,   i, line) {
		line = "| " what " |"
		for (i = 1; i <= nl; i++)
			line = line " " (both ? two(lab[i], p, re, unit) : cell(lab[i], p, re, "", unit)) " |"
		print line
	}
	END {
		nl = split(order, lab, " ")
		h = "| target |"; sep = "|---|"
		for (i = 1; i <= nl; i++) { h = h " " lab[i] " (256 MiB / 1 GiB) |"; sep = sep "---|" }
		print h; print sep
		row("first snapshot of a mapped, written region ≤ 1.5× `UFFDIO_WRITEPROTECT`", 2, "^snap/uffdwp$", "×", 1)
		row("... and ≥ 2× faster than `fork()` 4K (fork / snapshot)", 2, "^fork4k/snap$", "×", 1)
		row("snapshot after 64 changed pages ≤ 0.2× the first (256 MiB)", 3, "k=64_snap/first$", "×", 0)
		row("slab per resident page, 64 changes, ≤ 0.25 byte (256 MiB)", 3, "k=64_slab_B/page$", " B", 0)
		row("4096 snapshots of 1 GiB, one page changed each: slab ≤ 64 MiB", 4, "^slab_growth_MiB$", " MiB", 0)
		row("... of which records (`meta_bytes`)", 4, "^meta_growth_MiB$", " MiB", 0)
		row("read pass right after a snapshot ≤ 1.05× before", 5, "^after/before$", "×", 1)
		row("first write ≤ 1.25× anonymous CoW after `fork()`", 6, "^cowsnap/fork$", "×", 1)
		row("userfaultfd-WP first write ≥ 5× cowsnap'\''s", 6, "^uffd/cowsnap$", "×", 1)
		row("restore of 16 pages ≤ 1.25× a 4 MiB region'\''s", 7, "^restore_", "×", 1)
		row("diff, 64 changed pages, ≤ 1.25× a 4 MiB region'\''s (all sizes)", 8, "^diff_", "×", 0)
		row("`/proc/cowsnap`, `SNAP_LIST` ≤ 1.25× a 4 MiB region'\''s (all sizes)", 9, "^(proc|snap_list)_", "×", 0)
		print ""
		print "Where the first snapshot'\''s time goes (part 10, ftrace function_graph, at the"
		print "largest size), in units of one `UFFDIO_WRITEPROTECT` PTE walk of the same range:"
		print ""
		print "| kernel | MiB | whole call | walk 1 (clean) | walk 2 (write-protect) | walk 3 (clean) | xarray before the walks | pin check and marks | `fork()` 4K copy_page_range |"
		print "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= nl; i++) {
			l = lab[i]; s = big[l]
			if (!s) continue
			line = "| " l " | " s " |"
			n = split("cowsnap:wall cowsnap:walk1_clean cowsnap:walk2_wp cowsnap:walk3_clean cowsnap:xa_drain cowsnap:xa_pin_marks fork4k:copy_page_range", c, " ")
			for (j = 1; j <= n; j++) {
				x = d[l, s, c[j], "vs_uffd_walk"]
				line = line " " (x == "" || x ~ /nan/ ? "—" : fmt(x)) " |"
			}
			print line
		}
	}' "$tmp/all"
}

readme=${BENCH_README-}
[ -n "${BENCH_OUT:-}" ] || readme=${BENCH_README-$top/README.md}
begin='<!-- bench summary: written by scripts/bench-report.sh, do not edit -->'
end='<!-- end of bench summary -->'
if [ -n "$readme" ] && grep -qxF "$begin" "$readme" && grep -qxF "$end" "$readme"; then
	readme_block > "$tmp/block"
	awk -v b="$begin" -v e="$end" -v f="$tmp/block" '
		$0 == e { skip = 0 }
		!skip { print }
		$0 == b { while ((getline x < f) > 0) print x; skip = 1 }
	' "$readme" > "$tmp/readme"
	cat "$tmp/readme" > "$readme"
	echo "bench-report: rewrote the bench summary in $readme" >&2
fi

echo "bench-report: wrote $out/results.md$([ "$plots" = 1 ] && echo ", snapshot-time.png, slab-per-snapshot.png")" >&2
