# SPDX-License-Identifier: GPL-2.0
# cowsnap: `make` builds the module and user space for one kernel,
# `make check` runs the test suite in Debian's kernels under TCG.

CACHE ?= $(or $(COWSNAP_CACHE),/var/cache/cowsnap)
# Default kernel: the bench's 6.1 when set up, else the running kernel.
KVER ?= $(or $(shell awk '$$1 == "6.1" { print $$2 }' $(CACHE)/kernels 2>/dev/null),$(shell uname -r))
KDIR ?= /lib/modules/$(KVER)/build
KERNELS ?=
FILTER ?=
LINT ?= 1
# One guest at a time on this machine: the bench shares build/KERNEL.
LOCK := flock /tmp/cowsnap-bench.lock
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
CC ?= gcc
CFLAGS ?= -O2 -g
WFLAGS := -Wall -Wextra -Wno-unused-parameter
UCFLAGS = $(CFLAGS) $(WFLAGS) -Iinclude/uapi -Iuserspace

# Guest programs run by `make check`, in name order: fuzz_*, stress_*, test_*.
TESTS := $(patsubst tests/%.c,build/guest-bin/%,$(wildcard tests/test_*.c \
	tests/fuzz_*.c tests/stress_*.c))
HELPERS := $(patsubst tests/%.c,build/guest-bin/%,$(wildcard tests/helper_*.c))
BENCHES := $(patsubst tests/%.c,build/guest-bin/%,$(wildcard tests/bench_*.c))

.PHONY: all module userspace guest-bin bench-module check vm demo bench lint \
	install install-userspace clean

all: module userspace

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

LIBSRC := userspace/libcowsnap.c userspace/libcowsnap.h \
	include/uapi/linux/cowsnap.h

userspace: build/libcowsnap.a build/libcowsnap.so build/cowsnap

build/obj/libcowsnap.o: $(LIBSRC)
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -fPIC -c -o $@ $<

build/libcowsnap.a: build/obj/libcowsnap.o
	$(AR) rcs $@ $^

build/libcowsnap.so: build/obj/libcowsnap.o
	$(CC) $(CFLAGS) -shared -Wl,-soname,libcowsnap.so.0 -o $@ $^

build/cowsnap: userspace/cowsnap.c build/libcowsnap.a
	$(CC) $(UCFLAGS) -o $@ $< build/libcowsnap.a

# Static programs for the guest; the CLI lands in its /bin.
guest-bin: $(TESTS) $(HELPERS) $(BENCHES) build/guest-bin/cowsnap

build/guest-bin/cowsnap: userspace/cowsnap.c $(LIBSRC)
	@mkdir -p $(dir $@)
	$(CC) -static $(UCFLAGS) -o $@ userspace/cowsnap.c userspace/libcowsnap.c

build/guest-bin/%: tests/%.c tests/*.h include/uapi/linux/cowsnap.h
	@mkdir -p $(dir $@)
	$(CC) -static $(UCFLAGS) -Itests -o $@ $< -lpthread

# The module built for one bench kernel in its own copy of the tree.
bench-module:
	@test -n "$(KERNEL)" || { echo "KERNEL= needed"; exit 1; }
	@mkdir -p build/$(KERNEL)/src
	@cp -r Kbuild module include build/$(KERNEL)/src/
	$(MAKE) -C $$(awk '$$1 == "$(KERNEL)" { print $$5 }' $(CACHE)/kernels) \
		M=$(CURDIR)/build/$(KERNEL)/src W=1 KCFLAGS=-Werror modules
	@cp build/$(KERNEL)/src/cowsnap.ko build/$(KERNEL)/cowsnap.ko

check:
	KERNELS="$(KERNELS)" FILTER="$(FILTER)" LINT="$(LINT)" bash scripts/check.sh

vm: guest-bin
	bash scripts/setup.sh >/dev/null
	$(MAKE) bench-module KERNEL=$(or $(KERNELS),6.1)
	bash scripts/mkinitramfs.sh $(or $(KERNELS),6.1)
	bash scripts/vm.sh $(or $(KERNELS),6.1) shell

demo:
	KERNEL=$(or $(KERNELS),6.1) bash scripts/demo.sh

# Benchmarks in a 4 GiB guest; numbers in README.md ("Performance").
bench: guest-bin
	bash scripts/setup.sh >/dev/null
	$(LOCK) $(MAKE) -s bench-run KERNEL=$(or $(KERNELS),6.1)

bench-run: bench-module
	bash scripts/mkinitramfs.sh $(KERNEL)
	COWSNAP_VM_MEM=4G bash scripts/vm.sh $(KERNEL) bench
	@tr -d '\r' < build/$(KERNEL)/results.log | grep -v '^END$$'

lint:
	bash scripts/lint.sh

install: all install-userspace
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install

install-userspace: userspace
	install -D -m 0755 build/cowsnap $(DESTDIR)$(BINDIR)/cowsnap
	install -D -m 0644 build/libcowsnap.a $(DESTDIR)$(LIBDIR)/libcowsnap.a
	install -D -m 0755 build/libcowsnap.so \
		$(DESTDIR)$(LIBDIR)/libcowsnap.so.0
	ln -sf libcowsnap.so.0 $(DESTDIR)$(LIBDIR)/libcowsnap.so
	install -D -m 0644 userspace/libcowsnap.h \
		$(DESTDIR)$(INCLUDEDIR)/libcowsnap.h
	install -D -m 0644 include/uapi/linux/cowsnap.h \
		$(DESTDIR)$(INCLUDEDIR)/linux/cowsnap.h
	install -D -m 0644 docs/cowsnap.8 $(DESTDIR)$(MANDIR)/man8/cowsnap.8
	install -D -m 0644 docs/libcowsnap.3 \
		$(DESTDIR)$(MANDIR)/man3/libcowsnap.3

clean:
	rm -rf build
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null || true
