#!/usr/bin/env bash
# Build the KASAN + lockdep + kmemleak 6.1 kernel configured by
# scripts/debug-kernel/defconfig-6.1-dbg into $COWSNAP_CACHE/dbg (about 25
# minutes on 2 cores the first time, ~2.5 GB).  Skips the build when the
# cached kernel was made from the same config.  scripts/setup.sh then lists
# it as kernel "dbg"; scripts/check.sh runs the suite on it too.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${COWSNAP_CACHE:-/var/cache/cowsnap}
cfg=${1:-$top/scripts/debug-kernel/defconfig-6.1-dbg}
out=$CACHE/dbg/out
stamp=$out/cowsnap-config.sha256
sum=$(sha256sum < "$cfg" | cut -d' ' -f1)
if [ -e "$out/arch/x86/boot/bzImage" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
	exit 0
fi
echo "build-debug-kernel: building the KASAN + lockdep kernel (once; ~25 min)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends linux-source-6.1 flex bison \
	bc libelf-dev libssl-dev >/dev/null
mkdir -p "$CACHE/dbg"
cd "$CACHE/dbg"
[ -d linux-source-6.1 ] || tar -xaf /usr/src/linux-source-6.1.tar.xz
mkdir -p out
rm -f "$stamp"
cp "$cfg" out/.config
cd linux-source-6.1
make O=../out olddefconfig >/dev/null
make O=../out -j"$(nproc)" bzImage modules_prepare
echo "$sum" > "$stamp"
