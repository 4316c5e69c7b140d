#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The Debian packages end to end, on this (Debian) host, as root; run by
# scripts/check.sh (PKG=0 skips it there) or alone:
#  1. `make deb` (scripts/mkdeb.sh) builds cowsnap-dkms, libcowsnap0,
#     libcowsnap-dev and cowsnap-tools into build/deb/; lintian has no error;
#  2. apt-get -o DPkg::Lock::Timeout=900 installs them; DKMS builds and installs the module for the
#     bench's 6.1 and 6.12 kernels (scripts/setup.sh installed their
#     headers); the versions of packages, dkms.conf, man pages, pkg-config,
#     CLI and module are module/cowsnap.h's; dkms.conf's
#     BUILD_EXCLUSIVE_KERNEL takes 6.1 to 6.12 only; a program builds
#     against libcowsnap-dev and loads libcowsnap.so.0; `make uninstall`
#     removes what `make install-userspace` put into a staging directory;
#  3. a 6.1 guest loads the DKMS-built cowsnap.ko and runs test_cli against
#     the packaged /usr/bin/cowsnap (scripts/mkinitramfs.sh with
#     COWSNAP_KO, COWSNAP_CLI, COWSNAP_TESTS; logs in build/pkg-6.1/);
#  4. apt-get -o DPkg::Lock::Timeout=900 purge removes them again, and the files DKMS's depmod runs
#     left in /lib/modules go too: the host is as before.
# `package-test.sh host` runs 1 and 2 and leaves the packages installed;
# `package-test.sh guest` then runs 3 and 4 (scripts/check.sh runs the host
# phase beside the other guests, the guest phase after them).
# Prints PASS/FAIL lines (the guest's as scripts/guest-results.sh reads
# them) for scripts/check.sh to count, progress on stderr; exits 1 when
# something failed.  Holds /tmp/cowsnap-bench.lock (the one check.sh holds
# when it runs this).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
CACHE=${COWSNAP_CACHE:-/var/cache/cowsnap}
export DEBIAN_FRONTEND=noninteractive
pkgs="cowsnap-dkms libcowsnap0 libcowsnap-dev cowsnap-tools"
phase=${1:-all}
case $phase in
all|host|guest) ;;
*) echo "usage: package-test.sh [all|host|guest]" >&2; exit 2 ;;
esac
guest=6.1
out=build/pkg
gdir=$top/build/pkg-$guest
rc=0
pass() { echo "PASS package.$1"; }
fail() { echo "FAIL package.$1: $2" | sed '2,$s/^/    /'; rc=1; }
say() { echo "package: $*" >&2; }

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "SKIP package.all: needs root and apt-get"
	exit 0
fi
# One bench run at a time; check.sh hands its lock down as fd 9.
[ "$(readlink /proc/$$/fd/9 2>/dev/null)" = /tmp/cowsnap-bench.lock ] ||
	exec 9>/tmp/cowsnap-bench.lock
flock 9
t0=$(date +%s)

version=$(sed -n 's/^#define COWSNAP_VERSION[[:space:]]*"\(.*\)"/\1/p' module/cowsnap.h)

installed() {  # the packages dpkg knows of (installed or config files)
	dpkg-query -W -f '${Package} ${db:Status-Abbrev}\n' $pkgs 2>/dev/null |
		awk '$2 ~ /^[a-z][icfhHtuW]/ { print $1 }'
}
cleanup() {  # purge the packages; drop what depmod left in /lib/modules
	local abi f left=""
	say "purging the packages"
	[ -z "$(installed)" ] || apt-get -o DPkg::Lock::Timeout=900 purge -y -qq $pkgs > "$out/purge.log" 2>&1 ||
		left="apt-get purge failed ($out/purge.log)"
	for kv in $abis; do
		abi=${kv#*:}
		for f in $(ls -A "/lib/modules/$abi" 2>/dev/null); do
			if ! grep -qx -- "$f" <<< "${before[$abi]}"; then
				case $f in
				modules.*) rm -f "/lib/modules/$abi/$f" ;;
				updates) rmdir "/lib/modules/$abi/updates/dkms" \
					"/lib/modules/$abi/updates" 2>/dev/null ;;
				esac
			fi
		done
	done
	# DKMS's signing key, when this run made it.
	[ -n "$mok_before" ] || rm -f /var/lib/dkms/mok.key /var/lib/dkms/mok.pub
	rmdir /var/lib/dkms/cowsnap 2>/dev/null
	[ -z "$(installed)" ] || left="$left dpkg still lists: $(installed | tr '\n' ' ')"
	[ ! -e "/usr/src/cowsnap-$version" ] || left="$left /usr/src/cowsnap-$version"
	[ ! -e /var/lib/dkms/cowsnap ] || left="$left /var/lib/dkms/cowsnap"
	for kv in $abis; do
		abi=${kv#*:}
		[ "$(ls -A "/lib/modules/$abi" 2>/dev/null)" = "${before[$abi]}" ] ||
			left="$left /lib/modules/$abi changed"
	done
	if [ -z "$left" ]; then
		pass purge
	else
		fail purge "left behind:$left"
	fi
}
# Steps 3 and 4: the guest, then the purge.
guest_phase() {
	# 3. A 6.1 guest with the DKMS-built module and the packaged CLI.
	if [ -n "$ko61" ]; then
		say "booting $guest with $ko61 and /usr/bin/cowsnap (test_cli)"
		mkdir -p "$gdir"
		if COWSNAP_GUEST_DIR=$gdir COWSNAP_KO=$ko61 COWSNAP_CLI=/usr/bin/cowsnap \
			COWSNAP_TESTS=test_cli bash scripts/mkinitramfs.sh "$guest" > "$out/guest.log" 2>&1 &&
		   COWSNAP_GUEST_DIR=$gdir COWSNAP_CLI=/usr/bin/cowsnap \
		   COWSNAP_VM_TIMEOUT=${COWSNAP_PKG_VM_TIMEOUT:-900} \
			bash scripts/vm.sh "$guest" test >> "$out/guest.log" 2>&1; then
			bash scripts/guest-results.sh "$gdir" | tee "$out/guest-results.log"
			grep -q '^FAIL' "$out/guest-results.log" && rc=1
		else
			fail guest "$(tail -n 20 "$out/guest.log")"
		fi
	else
		fail guest "no DKMS-built module for $guest"
	fi

	# 4. Purge.
	cleanup
	trap - INT TERM
	say "done in $(( $(date +%s) - t0 ))s"
}

state=$out/state
# The guest phase of an earlier host phase: its state is in $state.
if [ "$phase" = guest ]; then
	[ -r "$state" ] || { fail state "no $state: run the host phase first"; exit 1; }
	. "$state"
	rc=0
	trap 'cleanup >/dev/null; exit 1' INT TERM
	guest_phase
	exit $rc
fi

rm -rf "$out" && mkdir -p "$out"
awk '$1 == "6.1" || $1 == "6.12" { n++ } END { exit n != 2 }' "$CACHE/kernels" 2>/dev/null ||
	bash scripts/setup.sh > "$out/setup.log" 2>&1 ||
	{ fail setup "scripts/setup.sh failed ($out/setup.log)"; exit 1; }
make -s build/guest-bin/test_cli > "$out/make.log" 2>&1 ||
	{ fail guest-bin "$(tail -n 20 "$out/make.log")"; exit 1; }

# A previous run that died half-way: start from a clean host.
if [ -n "$(installed)" ]; then
	say "purging packages left by an earlier run: $(installed | tr '\n' ' ')"
	apt-get -o DPkg::Lock::Timeout=900 purge -y -qq $(installed) > /dev/null 2>&1
fi

# 1. Build and lintian.
say "building debs"
if LINTIAN=0 bash scripts/mkdeb.sh > "$out/mkdeb.log" 2>&1; then
	pass build
else
	fail build "$(tail -n 30 "$out/mkdeb.log")"
	exit 1
fi
debs=$(ls build/deb/*.deb)
say "lintian"
# mkdeb.sh ran with LINTIAN=0, so it did not install lintian.
dpkg -s lintian >/dev/null 2>&1 ||
	apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends lintian >/dev/null 2>&1
lintian --fail-on error build/deb/cowsnap_"$version"_*.changes > "$out/lintian.log" 2>&1
lrc=$?
errors=$(grep '^E: ' "$out/lintian.log")
warnings=$(grep -c '^W: ' "$out/lintian.log")
if [ "$lrc" = 0 ] && [ -z "$errors" ]; then
	pass "lintian ($warnings warnings, $out/lintian.log)"
else
	fail lintian "${errors:-exit $lrc} ($out/lintian.log)"
fi

# 2. Install; DKMS for the bench kernels.
declare -A before
abis=""
while read -r short abi _; do
	case $short in 6.1|6.12) ;; *) continue ;; esac
	abis="$abis $short:$abi"
	before[$abi]=$(ls -A "/lib/modules/$abi" 2>/dev/null)
done < "$CACHE/kernels"
mok_before=$(ls /var/lib/dkms/mok.* 2>/dev/null)

trap 'cleanup >/dev/null; exit 1' INT TERM

say "installing $(echo $debs | tr '\n' ' ')"
if apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $(printf './%s ' $debs) \
	> "$out/install.log" 2>&1; then
	pass install
else
	fail install "$(tail -n 20 "$out/install.log")"
	cleanup
	exit 1
fi

ko61=""
for kv in $abis; do
	short=${kv%%:*} abi=${kv#*:}
	say "dkms: building the module for $abi"
	if ! dkms install -m cowsnap -v "$version" -k "$abi" > "$out/dkms-$short.log" 2>&1; then
		fail "dkms-$short" "$(tail -n 20 "$out/dkms-$short.log")"
		continue
	fi
	ko=$(find "/lib/modules/$abi/updates" -name 'cowsnap.ko*' 2>/dev/null | head -n 1)
	magic=$(modinfo -F vermagic "$ko" 2>/dev/null)
	mver=$(modinfo -F version "$ko" 2>/dev/null)
	if [ -n "$ko" ] && [ "${magic%% *}" = "$abi" ] && [ "$mver" = "$version" ]; then
		pass "dkms-$short"
	else
		fail "dkms-$short" "module '$ko' vermagic '$magic' version '$mver'"
	fi
	[ "$short" = "$guest" ] && ko61=$ko
done

# Every version is module/cowsnap.h's.
bad=""
for p in $pkgs; do
	v=$(dpkg-query -W -f '${Version}' "$p" 2>/dev/null)
	[ "$v" = "$version" ] || bad="$bad $p=$v"
done
grep -qx "PACKAGE_VERSION=\"$version\"" "/usr/src/cowsnap-$version/dkms.conf" 2>/dev/null ||
	bad="$bad dkms.conf"
for m in man8/cowsnap.8 man3/libcowsnap.3; do
	zcat "/usr/share/man/$m.gz" 2>/dev/null | grep -q "^\\.TH .*\"cowsnap $version\"" ||
		bad="$bad $m"
done
v=$(pkg-config --modversion cowsnap 2>/dev/null)
[ "$v" = "$version" ] || bad="$bad pkg-config=$v"
v=$(/usr/bin/cowsnap --version 2>/dev/null | head -n 1)
case "$v " in "cowsnap $version "*) ;; *) bad="$bad cowsnap--version='$v'" ;; esac
if [ -z "$bad" ]; then
	pass "version-$version"
else
	fail "version-$version" "differs:$bad"
fi

# dkms.conf's supported range: the bench kernels and made-up releases.
bad=""
for k in $(for kv in $abis; do echo "${kv#*:}"; done) 6.1.0-1-amd64 6.1.99 \
	6.6.0-1-amd64 6.10.3 6.12.0 6.12.9+deb12-amd64 5.10.0-30-amd64 6.0.12 \
	6.13.1 6.18.44 6.120.1 16.1.0 7.1.0; do
	case $k in 6.[1-9].*|6.1[0-2].*) want=yes ;; *) want=no ;; esac
	got=$( (set +u; . "/usr/src/cowsnap-$version/dkms.conf" 2>/dev/null
		[[ $k =~ $BUILD_EXCLUSIVE_KERNEL ]] && echo yes || echo no) )
	[ "$got" = "$want" ] || bad="$bad $k:$got"
done
if [ -z "$bad" ]; then
	pass build-exclusive-kernel
else
	fail build-exclusive-kernel "wrong for$bad"
fi

# libcowsnap-dev: a program builds with pkg-config and loads libcowsnap.so.0.
if log=$(gcc -std=c11 -Wall -Werror tests/api_header.c \
		$(pkg-config --cflags --libs cowsnap 2>&1) -o "$out/api-pc" 2>&1) &&
   ldd "$out/api-pc" | grep -qE "=> (/usr)?/lib/[^ ]*/libcowsnap\.so\.0 "; then
	pass libcowsnap-dev
else
	fail libcowsnap-dev "${log:-$(ldd "$out/api-pc" 2>&1)}"
fi

# make install-userspace, make uninstall into a staging directory: no file
# stays behind.
stage=$top/$out/stage
if log=$(make -s install-userspace DESTDIR="$stage" PREFIX=/usr 2>&1 &&
	make -s uninstall DESTDIR="$stage" PREFIX=/usr 2>&1) &&
   [ -z "$(find "$stage" ! -type d)" ]; then
	pass make-uninstall
else
	fail make-uninstall "${log:-left: $(find "$stage" ! -type d | tr '\n' ' ')}"
fi

if [ "$phase" = host ]; then
	# What the guest phase and its purge need, for a later call.
	declare -p before abis ko61 mok_before > "$state"
	trap - INT TERM
	say "host phase done in $(( $(date +%s) - t0 ))s"
	exit $rc
fi
guest_phase
exit $rc
