#!/usr/bin/env bash
# Pack build/KERNEL/initramfs.cpio.gz: busybox, /init, the module built for
# KERNEL, the static test programs and CLI from build/guest-bin.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kernel=$1
b=$top/build/$kernel
root=$b/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,tests,lib/modules,etc,root}
cp /bin/busybox "$root/bin/busybox"
install -m 0755 "$top/scripts/guest-init.sh" "$root/init"
cp "$b/cowsnap.ko" "$root/lib/modules/cowsnap.ko"
# brd (a RAM disk) for the O_DIRECT tests, from the kernel's own modules.
read -r _ _ _ mdir _ < <(awk -v k="$kernel" '$1 == k' "${COWSNAP_CACHE:-/var/cache/cowsnap}/kernels")
brd=$(find "$mdir" -name 'brd.ko*' 2>/dev/null | head -n 1 || true)
case "$brd" in
*.xz) xz -dc "$brd" > "$root/lib/modules/brd.ko" ;;
?*) cp "$brd" "$root/lib/modules/brd.ko" ;;
esac
for f in "$top"/build/guest-bin/{fuzz,stress,test}_*; do
	[ -e "$f" ] && install -m 0755 "$f" "$root/tests/"
done
for f in "$top"/build/guest-bin/cowsnap "$top"/build/guest-bin/helper_* \
	 "$top"/build/guest-bin/bench_*; do
	[ -e "$f" ] && install -m 0755 "$f" "$root/bin/"
done
install -m 0755 "$top/scripts/guest-demo.sh" "$root/demo.sh"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$b/initramfs.cpio.gz"
