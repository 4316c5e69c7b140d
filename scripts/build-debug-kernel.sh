#!/usr/bin/env bash
# Build the KASAN + lockdep 6.1 kernel described in ../shared/debug-kernel
# into $COWSNAP_CACHE/dbg (about 25 minutes on 2 cores, ~2.5 GB).  Once it
# exists, scripts/setup.sh lists it as kernel "dbg":
#   make check KERNELS=dbg
# It is not part of the default run (everything is ~5x slower under KASAN).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${COWSNAP_CACHE:-/var/cache/cowsnap}
cfg=${1:-$top/../shared/debug-kernel/defconfig-6.1-dbg}
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends linux-source-6.1 flex bison \
	bc libelf-dev libssl-dev >/dev/null
mkdir -p "$CACHE/dbg"
cd "$CACHE/dbg"
[ -d linux-source-6.1 ] || tar -xaf /usr/src/linux-source-6.1.tar.xz
mkdir -p out
cp "$cfg" out/.config
cd linux-source-6.1
make O=../out olddefconfig >/dev/null
make O=../out -j"$(nproc)" bzImage modules_prepare
