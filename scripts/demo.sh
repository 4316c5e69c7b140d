#!/usr/bin/env bash
# The main job here: set up, build, boot Debian's 6.1 kernel under TCG with
# the module loaded and run scripts/guest-demo.sh in it.  KERNEL=6.12 to
# pick the other kernel.  On a machine that can load modules, use insmod.
set -euo pipefail
cd "$(dirname "$0")/.."
k=${KERNEL:-6.1}
echo "demo: checking packages and Debian's kernels" >&2
bash scripts/setup.sh >/dev/null
echo "demo: building the library, CLI and guest programs" >&2
make -s guest-bin
exec 9>/tmp/cowsnap-bench.lock
flock 9
echo "demo: building the module for $k" >&2
make -s bench-module KERNEL="$k" >/dev/null
bash scripts/mkinitramfs.sh "$k"
echo "demo: booting Debian's $k kernel under TCG (a minute)" >&2
bash scripts/vm.sh "$k" demo
tr -d '\r' < "build/$k/results.log" | grep -v '^END$'
if grep -E 'WARNING:|BUG:|Oops|Call Trace' "build/$k/console.log"; then
	echo "demo: the kernel log has reports (build/$k/console.log)" >&2
	exit 1
fi
