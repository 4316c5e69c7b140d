#!/usr/bin/env bash
# Install what the bench needs and fetch Debian's kernels (idempotent).
#
# Resolves the kernel ABI of each metapackage at run time, installs the
# matching headers, and unpacks the image packages into the cache
# ($COWSNAP_CACHE, default /var/cache/cowsnap).  Prints one line per kernel:
#   <short-name> <abi> <vmlinuz> <modules-dir> <kdir>
# into $COWSNAP_CACHE/kernels.
set -euo pipefail

CACHE=${COWSNAP_CACHE:-/var/cache/cowsnap}
export DEBIAN_FRONTEND=noninteractive
PKGS="gcc make libc6-dev qemu-system-x86 busybox-static cpio kmod sparse
      xz-utils zstd perl python3 libsqlite3-dev afl++
      redis-tools"
# afl++ and redis-tools: examples/fuzzreset and examples/kvsave.
# redis-tools holds the Redis server binary that examples/kvsave compares
# with (redis-check-rdb; the redis-server package only adds a service).
# short name -> image metapackage, headers metapackage
KERNELS="6.1:linux-image-amd64:linux-headers-amd64
6.12:linux-image-6.12-amd64:linux-headers-6.12-amd64"

mkdir -p "$CACHE"
stamp="$CACHE/apt-updated"
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
	apt-get -o DPkg::Lock::Timeout=900 update -qq
	touch "$stamp"
fi

missing=""
for p in $PKGS; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup: installing$missing" >&2
	apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing >/dev/null
fi

dep_of() {  # dep_of META PREFIX -> the concrete package META depends on
	apt-cache depends "$1" 2>/dev/null |
		awk -v p="$2" '$1 ~ /Depends:/ && index($2, p) == 1 { print $2; exit }'
}

: > "$CACHE/kernels.new"
while IFS=: read -r short imeta hmeta; do
	ipkg=$(dep_of "$imeta" linux-image-)
	[ -n "$ipkg" ] || { echo "setup: cannot resolve $imeta" >&2; exit 1; }
	abi=${ipkg#linux-image-}
	abi=${abi%-unsigned}
	hpkg=linux-headers-$abi
	if [ ! -e "/lib/modules/$abi/build/Makefile" ]; then
		echo "setup: installing $hpkg" >&2
		apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "$hpkg" >/dev/null
	fi
	kdir="$CACHE/kernel-$abi"
	if [ ! -e "$kdir/boot/vmlinuz-$abi" ]; then
		echo "setup: fetching $ipkg" >&2
		tmp=$(mktemp -d)
		chmod 0755 "$tmp"
		(cd "$tmp" && apt-get download -qq "$ipkg" 2>/dev/null)
		rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
		dpkg-deb -x "$tmp"/*.deb "$kdir.tmp"
		rm -rf "$tmp" "$kdir" && mv "$kdir.tmp" "$kdir"
	fi
	mdir="$kdir/lib/modules/$abi"
	[ -d "$mdir" ] || mdir="$kdir/usr/lib/modules/$abi"
	echo "$short $abi $kdir/boot/vmlinuz-$abi $mdir /lib/modules/$abi/build" >> "$CACHE/kernels.new"
done <<< "$KERNELS"
# The optional KASAN + lockdep kernel (scripts/build-debug-kernel.sh).
dbg=$CACHE/dbg/out
if [ -e "$dbg/arch/x86/boot/bzImage" ] && [ -e "$dbg/include/config/kernel.release" ]; then
	echo "dbg $(cat "$dbg/include/config/kernel.release") $dbg/arch/x86/boot/bzImage - $dbg" >> "$CACHE/kernels.new"
fi
mv "$CACHE/kernels.new" "$CACHE/kernels"
cat "$CACHE/kernels"
