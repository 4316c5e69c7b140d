#!/usr/bin/env bash
# Host checks of libcowsnap and the CLI, run by `make check-userspace` (and
# so by `make guest-bin` and `make check`).  Each check prints a line; any
# failure exits non-zero.
#  - libcowsnap.h compiles as C (c99, c11, gnu17) and C++ (c++11, c++17,
#    c++20) with -Wall -Wextra -pedantic -Werror (tests/api_header.c), and
#    the result links against libcowsnap.so and libcowsnap.a;
#  - libcowsnap.so.0 (its soname) exports exactly the functions of
#    libcowsnap.h and libcowsnap.map, versioned LIBCOWSNAP_0, and
#    libcowsnap.a defines nothing else but csnap__ helpers;
#  - libcowsnap(3) names every function;
#  - docs/errors.md's rows "asserted by test_errors" and "test_lib" are
#    exactly rows[] of tests/test_errors.c and tests/test_lib.c;
#  - `make install-userspace` into a staging directory installs the
#    library, its pkg-config file (which compiles and links a program),
#    the header, the CLI and a man page or link for every function.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
CC=${CC:-gcc}
CXX=${CXX:-g++}
MAKE=${MAKE:-make}
out=build/check-userspace
rm -rf "$out"
mkdir -p "$out"
rc=0
pass() { echo "PASS userspace.$1"; }
fail() { echo "FAIL userspace.$1: $2"; rc=1; }

inc="-Iinclude/uapi -Iuserspace"
warn="-Wall -Wextra -pedantic -Werror"

# The header as C and as C++.
if ! command -v "$CXX" >/dev/null; then
	fail header-cxx "$CXX not found: the C++ header test needs g++"
fi
for std in c99 c11 gnu17; do
	if log=$($CC -std=$std $warn -Wstrict-prototypes -Wmissing-prototypes \
		$inc -c tests/api_header.c -o "$out/api-$std.o" 2>&1); then
		pass "header-$std"
	else
		fail "header-$std" "$log"
	fi
done
for std in c++11 c++17 c++20; do
	command -v "$CXX" >/dev/null || break
	if log=$($CXX -x c++ -std=$std $warn $inc -c tests/api_header.c \
		-o "$out/api-$std.o" 2>&1); then
		pass "header-$std"
	else
		fail "header-$std" "$log"
	fi
done
if [ -e "$out/api-c11.o" ] &&
   log=$($CC "$out/api-c11.o" build/libcowsnap.so -o "$out/api-shared" 2>&1) &&
   log=$($CC "$out/api-c11.o" build/libcowsnap.a -o "$out/api-static" 2>&1); then
	pass link
else
	fail link "${log:-no object}"
fi
if [ -e "$out/api-c++17.o" ]; then
	if log=$($CXX "$out/api-c++17.o" build/libcowsnap.so -o "$out/api-cxx" 2>&1); then
		pass link-cxx
	else
		fail link-cxx "$log"
	fi
fi

# Exports: header == map == .so; nothing else in the .a.
header=$($CC -E -P $inc userspace/libcowsnap.h |
	grep -o '\bcsnap_[a-z0-9_]*[[:space:]]*(' | tr -d ' (' | sort -u)
map=$(sed -n 's/^[[:space:]]*\(csnap_[a-z0-9_]*\);/\1/p' userspace/libcowsnap.map | sort)
so=$(nm -D --defined-only build/libcowsnap.so | awk '{ print $3 }' |
	grep -v '^LIBCOWSNAP_' | sed 's/@.*//' | sort)
versions=$(nm -D --defined-only build/libcowsnap.so | awk '$3 ~ /^csnap_/ { print $3 }' |
	sed 's/.*@@*//' | sort -u)
[ "$header" = "$map" ] && pass header-is-map ||
	fail header-is-map "$(diff <(echo "$header") <(echo "$map") | grep '^[<>]' | tr '\n' ' ')"
[ "$so" = "$map" ] && pass exports ||
	fail exports "$(diff <(echo "$map") <(echo "$so") | grep '^[<>]' | tr '\n' ' ')"
[ "$versions" = LIBCOWSNAP_0 ] && pass symbol-versions ||
	fail symbol-versions "$versions"
soname=$(readelf -d build/libcowsnap.so | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libcowsnap.so.0 ] && pass soname || fail soname "'$soname'"
extra=$(nm -g --defined-only build/libcowsnap.a | awk 'NF == 3 { print $3 }' |
	grep -v '^csnap__' | sort | comm -23 - <(echo "$map") || true)
[ -z "$extra" ] && pass static-symbols || fail static-symbols "$extra"
missing=""
for f in $map; do
	grep -q "\\b$f\\b" tests/api_header.c || missing="$missing api_header.c:$f"
	grep -q "^\\.BI\\? \"[^\"]*\\b$f(" docs/libcowsnap.3 || missing="$missing libcowsnap.3:$f"
done
[ -z "$missing" ] && pass functions-documented || fail functions-documented "$missing"

# docs/errors.md against the tests' row tables.
rows_doc() {  # rows_doc TEST -> "call|errno" lines
	awk -F'|' -v t="$1" '
		/^## / { on = ($0 ~ /^## The table/) }
		on && /^\| / && NR > 1 {
			call = $2; err = $3; by = $5
			gsub(/`/, "", call); gsub(/`/, "", err)
			gsub(/^ +| +$/, "", call); gsub(/^ +| +$/, "", err)
			gsub(/^ +| +$/, "", by)
			if (by == t) print call "|" err
		}' docs/errors.md | sort
}
rows_test() {  # rows_test FILE -> "call|errno" lines of its rows[]
	sed -n 's/^[[:space:]]*ROW("\([^"]*\)", \(E[A-Z0-9]*\)),$/\1|\2/p' "$1" | sort
}
for t in test_errors test_lib; do
	d=$(rows_doc $t)
	c=$(rows_test tests/$t.c)
	if [ -n "$d" ] && [ "$d" = "$c" ]; then
		pass "errors-table-$t"
	else
		fail "errors-table-$t" "docs/errors.md vs tests/$t.c: $(diff <(echo "$d") <(echo "$c") | grep '^[<>]' | tr '\n' ' ')"
	fi
done
# Every errno of the table appears in both man pages' error lists.
missing=""
for e in $(awk -F'|' '/^\| / { gsub(/[` ]/, "", $3); if ($3 ~ /^E[A-Z0-9]+$/) print $3 }' docs/errors.md | sort -u); do
	grep -q "\\b$e\\b" docs/libcowsnap.3 || missing="$missing $e"
done
[ -z "$missing" ] && pass man-errors || fail man-errors "libcowsnap.3 lacks$missing"

# Man pages render without warnings.
if command -v groff >/dev/null; then
	for m in docs/cowsnap.8 docs/libcowsnap.3; do
		log=$(groff -man -t -ww -z "$m" 2>&1) && [ -z "$log" ] &&
			pass "man-$(basename "$m")" || fail "man-$(basename "$m")" "$log"
	done
fi

# Installation into a staging directory, as a distribution would.
stage=$(pwd)/$out/stage
if log=$($MAKE -s install-userspace DESTDIR="$stage" PREFIX=/usr 2>&1); then
	pass install
else
	fail install "$log"
fi
lib=$stage/usr/lib
[ "$(readlink "$lib/libcowsnap.so")" = libcowsnap.so.0 ] &&
	[ -e "$lib/libcowsnap.so.0" ] && [ -x "$stage/usr/bin/cowsnap" ] &&
	[ -e "$stage/usr/include/libcowsnap.h" ] &&
	[ -e "$stage/usr/include/linux/cowsnap.h" ] &&
	[ -e "$stage/usr/share/man/man8/cowsnap.8" ] && pass install-files ||
	fail install-files "$(cd "$stage" && find . | sort | tr '\n' ' ')"
missing=""
for f in $map; do
	grep -qx '.so man3/libcowsnap.3' "$stage/usr/share/man/man3/$f.3" 2>/dev/null ||
		missing="$missing $f.3"
done
[ -z "$missing" ] && pass man-links || fail man-links "$missing"
if command -v pkg-config >/dev/null; then
	export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage
	if flags=$(pkg-config --cflags --libs cowsnap 2>&1) &&
	   [ "$(pkg-config --modversion cowsnap)" = "$(sed -n 's/^#define COWSNAP_VERSION[[:space:]]*"\(.*\)"/\1/p' module/cowsnap.h)" ] &&
	   log=$($CC -std=c11 $warn tests/api_header.c $flags -o "$out/api-pc" 2>&1); then
		pass pkg-config
	else
		fail pkg-config "${log:-$flags}"
	fi
else
	echo "SKIP userspace.pkg-config: pkg-config not installed"
fi
exit $rc
