#!/usr/bin/env bash
# Boot a Debian kernel under TCG with the module and the test programs.
#   scripts/vm.sh KERNEL test [FILTER]   run the tests; print results
#   scripts/vm.sh KERNEL shell           interactive shell (serial on stdio)
#   scripts/vm.sh KERNEL demo            run scripts/demo.sh in the guest
#   scripts/vm.sh KERNEL bench           run the benchmarks (tests/bench_*)
#   scripts/vm.sh KERNEL examples        run the examples' measured mode
# KERNEL is a short name from $COWSNAP_CACHE/kernels (6.1, 6.12).  Expects
# `make bench-module KERNEL=...` and scripts/mkinitramfs.sh to have filled
# build/KERNEL/.  Test mode writes build/KERNEL/console.log (kernel log) and
# build/KERNEL/results.log.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${COWSNAP_CACHE:-/var/cache/cowsnap}
kernel=$1 mode=$2 filter=${3:-}
read -r _ abi vmlinuz _ _ < <(awk -v k="$kernel" '$1 == k' "$CACHE/kernels")
[ -n "${abi:-}" ] || { echo "vm: unknown kernel $kernel" >&2; exit 2; }
# COWSNAP_GUEST_DIR: as for scripts/mkinitramfs.sh.
b=${COWSNAP_GUEST_DIR:-$top/build/$kernel}
initrd=$b/initramfs.cpio.gz

# Debug switches the stock kernels have (docs/testing.md).
debug="slub_debug=FZPU page_poison=1 kfence.sample_interval=100"
case $mode in bench|examples) debug="" ;; esac	# measure the kernel users run
machine=() cpu=max
if [ "$kernel" = dbg ]; then
	# KASAN reports first; q35 avoids an ACPI stall of this config on "pc".
	debug="kfence.sample_interval=0"
	machine=(-machine q35)
	# With LA57 the kernel boots 5-level paging, KASAN reports a wild
	# access in early boot and lockdep switches itself off for the run.
	cpu=max,la57=off
fi
# COWSNAP_* settings for the guest programs ride on the command line.
for v in COWSNAP_SEED COWSNAP_FUZZ_CALLS COWSNAP_STRESS_SECONDS \
	COWSNAP_PROG_TIMEOUT COWSNAP_BENCH_SIZES COWSNAP_BENCH_PARTS COWSNAP_BENCH_REPS \
	COWSNAP_CLI; do
	[ -n "${!v:-}" ] && debug="$debug $v=${!v}"
done
append="console=ttyS0 panic=-1 loglevel=6 $debug COWSNAP_MODE=$mode"
[ -n "$filter" ] && append="$append COWSNAP_FILTER=$filter"
qemu=(qemu-system-x86_64 -accel tcg "${machine[@]}" -cpu "$cpu" -smp 2 -m "${COWSNAP_VM_MEM:-2G}" -no-reboot
      -kernel "$vmlinuz" -initrd "$initrd" -append "$append"
      -nic none -display none -monitor none)

if [ "$mode" = shell ]; then
	exec "${qemu[@]}" -serial stdio -serial null
fi
rm -f "$b/console.log" "$b/results.log"
timeout -s KILL "${COWSNAP_VM_TIMEOUT:-1500}" "${qemu[@]}" \
	-serial "file:$b/console.log" -serial "file:$b/results.log" </dev/null ||
	echo "vm: guest killed or failed (exit $?)" >> "$b/results.log"
