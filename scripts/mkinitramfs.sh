#!/usr/bin/env bash
# Pack build/KERNEL/initramfs.cpio.gz: busybox, /init, the module built for
# KERNEL, the static test programs, examples and CLI from build/guest-bin
# (and afl-fuzz and the Redis server with their libraries when the host
# has them).
# To boot something else (scripts/package-test.sh boots what the packages
# installed), the environment may name:
#   COWSNAP_GUEST_DIR  the directory for the initramfs (and scripts/vm.sh's
#                      logs), default build/KERNEL
#   COWSNAP_KO         the module to load, default build/KERNEL/cowsnap.ko
#                      (.ko.xz and .ko.zst are unpacked)
#   COWSNAP_CLI        the absolute path of a CLI to test instead of the
#                      static build/guest-bin/cowsnap: packed at the same
#                      path with the shared libraries it loads; scripts/vm.sh
#                      hands COWSNAP_CLI to the guest, where test_cli runs it
#   COWSNAP_TESTS      the names of the test programs to pack, default all
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kernel=$1
b=${COWSNAP_GUEST_DIR:-$top/build/$kernel}
ko=${COWSNAP_KO:-$b/cowsnap.ko}
cli=${COWSNAP_CLI:-}
root=$b/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,tests,lib/modules,etc,root}
cp /bin/busybox "$root/bin/busybox"
install -m 0755 "$top/scripts/guest-init.sh" "$root/init"
case "$ko" in
*.xz) xz -dc "$ko" > "$root/lib/modules/cowsnap.ko" ;;
*.zst) zstd -qdc "$ko" > "$root/lib/modules/cowsnap.ko" ;;
*) cp "$ko" "$root/lib/modules/cowsnap.ko" ;;
esac
# brd (a RAM disk) for the O_DIRECT tests, from the kernel's own modules.
read -r _ _ _ mdir _ < <(awk -v k="$kernel" '$1 == k' "${COWSNAP_CACHE:-/var/cache/cowsnap}/kernels")
brd=$(find "$mdir" -name 'brd.ko*' 2>/dev/null | head -n 1 || true)
case "$brd" in
*.xz) xz -dc "$brd" > "$root/lib/modules/brd.ko" ;;
?*) cp "$brd" "$root/lib/modules/brd.ko" ;;
esac
# Dynamic program $1 at path $2 (default its own), with its loader and
# libraries at the paths it asks for.
pack_dynamic() {
	install -D -m 0755 "$1" "$root${2:-$1}"
	for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
if [ -n "${COWSNAP_TESTS:-}" ]; then
	for t in $COWSNAP_TESTS; do
		install -m 0755 "$top/build/guest-bin/$t" "$root/tests/"
	done
else
	for f in "$top"/build/guest-bin/{fuzz,stress,test}_*; do
		[ -e "$f" ] && install -m 0755 "$f" "$root/tests/"
	done
fi
for f in "$top"/build/guest-bin/helper_* "$top"/build/guest-bin/bench_* \
	"$top"/build/guest-bin/example_* "$top"/build/guest-bin/afl_*; do
	[ -e "$f" ] && install -m 0755 "$f" "$root/bin/"
done
# afl-fuzz for examples/fuzzreset's measured run, when the host has it.
afl=$(command -v afl-fuzz || true)
[ -z "$afl" ] || [ ! -e "$top/build/guest-bin/afl_fuzzreset_fork" ] ||
	pack_dynamic "$afl"
if [ -z "$cli" ]; then
	f=$top/build/guest-bin/cowsnap
	[ ! -e "$f" ] || install -m 0755 "$f" "$root/bin/"
else
	case "$cli" in
	/*) ;;
	*) echo "mkinitramfs: COWSNAP_CLI must be an absolute path" >&2; exit 2 ;;
	esac
	pack_dynamic "$cli"
fi
# examples/kvsave compares itself with Debian's redis-server when there.
# redis-tools' redis-check-rdb is the same program (it acts on its name;
# redis-server is a symlink to it), without the redis-server service.
redis=$(command -v redis-server redis-check-rdb | head -n 1 || true)
[ -z "$redis" ] || pack_dynamic "$redis" /usr/bin/redis-server
install -m 0755 "$top/scripts/guest-demo.sh" "$root/demo.sh"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$b/initramfs.cpio.gz"
