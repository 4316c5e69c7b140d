#!/usr/bin/env bash
# Boot a Debian kernel under TCG with the module and the test programs.
#   scripts/vm.sh KERNEL test [FILTER]   run the tests; print results
#   scripts/vm.sh KERNEL shell           interactive shell (serial on stdio)
#   scripts/vm.sh KERNEL demo            run scripts/demo.sh in the guest
#   scripts/vm.sh KERNEL bench           run the benchmarks (tests/bench_*)
# KERNEL is a short name from $COWSNAP_CACHE/kernels (6.1, 6.12).  Expects
# `make bench-build` to have filled build/KERNEL/.  Test mode writes
# build/KERNEL/console.log (kernel log) and build/KERNEL/results.log.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${COWSNAP_CACHE:-/var/cache/cowsnap}
kernel=$1 mode=$2 filter=${3:-}
read -r _ abi vmlinuz _ _ < <(awk -v k="$kernel" '$1 == k' "$CACHE/kernels")
[ -n "${abi:-}" ] || { echo "vm: unknown kernel $kernel" >&2; exit 2; }
b=$top/build/$kernel
initrd=$b/initramfs.cpio.gz

# Debug switches the stock kernels have (see docs/bench.md).
debug="slub_debug=FZPU page_poison=1 kfence.sample_interval=100"
[ "$mode" = bench ] && debug=""	# measure the kernel users run
machine=()
if [ "$kernel" = dbg ]; then
	# KASAN reports first; q35 avoids an ACPI stall of this config on "pc".
	debug="kmemleak=off kfence.sample_interval=0"
	machine=(-machine q35)
fi
append="console=ttyS0 panic=-1 loglevel=6 $debug COWSNAP_MODE=$mode"
[ -n "$filter" ] && append="$append COWSNAP_FILTER=$filter"
qemu=(qemu-system-x86_64 -accel tcg "${machine[@]}" -cpu max -smp 2 -m "${COWSNAP_VM_MEM:-2G}" -no-reboot
      -kernel "$vmlinuz" -initrd "$initrd" -append "$append"
      -nic none -display none -monitor none)

if [ "$mode" = shell ]; then
	exec "${qemu[@]}" -serial stdio -serial null
fi
rm -f "$b/console.log" "$b/results.log"
timeout -s KILL "${COWSNAP_VM_TIMEOUT:-1500}" "${qemu[@]}" \
	-serial "file:$b/console.log" -serial "file:$b/results.log" </dev/null ||
	echo "vm: guest killed or failed (exit $?)" >> "$b/results.log"
