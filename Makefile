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
UCFLAGS = $(CPPFLAGS) $(CFLAGS) $(WFLAGS) -Iinclude/uapi -Iuserspace

# Guest programs run by `make check`, in name order: fuzz_*, stress_*, test_*.
TESTS := $(patsubst tests/%.c,build/guest-bin/%,$(wildcard tests/test_*.c \
	tests/fuzz_*.c tests/stress_*.c))
HELPERS := $(patsubst tests/%.c,build/guest-bin/%,$(wildcard tests/helper_*.c))
BENCHES := $(patsubst tests/%.c,build/guest-bin/%,$(wildcard tests/bench_*.c))
# Example programs (examples/NAME/), /bin/example_NAME in the guest.
EXAMPLES := build/guest-bin/example_sqlite build/guest-bin/example_fuzzreset \
	build/guest-bin/example_kvsave
# examples/fuzzreset's AFL++ targets, when afl-clang-fast (afl++) is here.
AFLCC ?= $(shell command -v afl-clang-fast 2>/dev/null)
EXAMPLES += $(if $(AFLCC),build/guest-bin/afl_fuzzreset_fork \
	build/guest-bin/afl_fuzzreset_persist)

.PHONY: all module userspace guest-bin bench-module check stress vm demo bench lint \
	examples examples-run \
	install install-module install-userspace uninstall uninstall-userspace \
	dkms-src dkms-install dkms-uninstall deb clean

all: module userspace

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

# libcowsnap (LGPL-2.1-or-later): libcowsnap.so.0 exports exactly the
# functions of libcowsnap.map; the CLI links the static library.  User space
# carries the module's version.
VERSION := $(shell sed -n 's/^\#define COWSNAP_VERSION[[:space:]]*"\(.*\)"/\1/p' module/cowsnap.h)
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
LIBSRC := userspace/libcowsnap.c userspace/libcowsnap.h \
	userspace/libcowsnap-internal.h include/uapi/linux/cowsnap.h
CLISRC := userspace/cowsnap.c userspace/json.c userspace/json.h
CLIFLAGS = -DCOWSNAP_CLI_VERSION='"$(or $(VERSION),unknown)"'
# One man page, libcowsnap(3), with a .so link for each function.
LIBFUNCS = $(shell sed -n 's/^[[:space:]]*\(csnap_[a-z_]*\);/\1/p' userspace/libcowsnap.map)

userspace: build/libcowsnap.a build/libcowsnap.so build/cowsnap

build/obj/libcowsnap.o: $(LIBSRC)
	@mkdir -p $(dir $@)
	$(CC) $(UCFLAGS) -fPIC -c -o $@ $<

build/libcowsnap.a: build/obj/libcowsnap.o
	rm -f $@
	$(AR) rcs $@ $^

build/libcowsnap.so: build/obj/libcowsnap.o userspace/libcowsnap.map
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libcowsnap.so.0 \
		-Wl,--version-script=userspace/libcowsnap.map -Wl,--no-undefined \
		-o $@ build/obj/libcowsnap.o

build/cowsnap: $(CLISRC) build/libcowsnap.a
	$(CC) $(UCFLAGS) $(CLIFLAGS) $(LDFLAGS) -o $@ userspace/cowsnap.c \
		userspace/json.c build/libcowsnap.a

# Host checks of user space (tests/check-userspace.sh): libcowsnap.h
# compiles as C and C++ and links, libcowsnap.so exports exactly the API,
# docs/errors.md and tests/test_errors.c list the same errors, the man
# pages and the install rule hold together.  The guest's CLI needs them,
# so `make check` fails when they do.
.PHONY: check-userspace
check-userspace: build/check-userspace.stamp

build/check-userspace.stamp: tests/check-userspace.sh tests/api_header.c \
		build/libcowsnap.a build/libcowsnap.so build/cowsnap \
		userspace/libcowsnap.map userspace/cowsnap.pc.in docs/errors.md \
		docs/libcowsnap.3 docs/cowsnap.8 tests/test_errors.c
	CC="$(CC)" CXX="$(CXX)" MAKE="$(MAKE)" bash tests/check-userspace.sh
	@touch $@

# Static programs for the guest; the CLI lands in its /bin.
guest-bin: $(TESTS) $(HELPERS) $(BENCHES) $(EXAMPLES) build/guest-bin/cowsnap

build/guest-bin/cowsnap: $(CLISRC) $(LIBSRC) build/check-userspace.stamp
	@mkdir -p $(dir $@)
	$(CC) -static $(UCFLAGS) $(CLIFLAGS) -o $@ userspace/cowsnap.c \
		userspace/json.c userspace/libcowsnap.c

# Guest programs built with libcowsnap.
build/guest-bin/test_lib: tests/test_lib.c tests/*.h $(LIBSRC)
	@mkdir -p $(dir $@)
	$(CC) -static $(UCFLAGS) -Itests -o $@ $< userspace/libcowsnap.c -lpthread

build/guest-bin/stress_model: $(LIBSRC)

# The SQLite example links Debian's static libsqlite3 (libsqlite3-dev); the
# linker's warning about dlopen() in a static program concerns SQLite's
# extension loading, which the example does not use.
build/guest-bin/example_sqlite: examples/sqlite/sqlite_demo.c $(LIBSRC)
	@mkdir -p $(dir $@)
	$(CC) -static $(UCFLAGS) -o $@ $< userspace/libcowsnap.c \
		-lsqlite3 -lpthread -lm -ldl

build/guest-bin/example_fuzzreset: examples/fuzzreset/fuzzreset.c $(LIBSRC)
	@mkdir -p $(dir $@)
	$(CC) -static $(UCFLAGS) -o $@ $< userspace/libcowsnap.c

# The same parser instrumented for afl-fuzz: a deferred fork server (1) and
# a persistent loop that restores a snapshot after each input (2).
build/guest-bin/afl_fuzzreset_fork: AFLMODE := 1
build/guest-bin/afl_fuzzreset_persist: AFLMODE := 2
build/guest-bin/afl_fuzzreset_%: examples/fuzzreset/fuzzreset.c $(LIBSRC)
	@mkdir -p $(dir $@)
	AFL_QUIET=1 $(AFLCC) -static $(UCFLAGS) -DFUZZRESET_AFL=$(AFLMODE) \
		-o $@ $< userspace/libcowsnap.c

build/guest-bin/example_kvsave: examples/kvsave/kvsave_demo.c $(LIBSRC)
	@mkdir -p $(dir $@)
	$(CC) -static $(UCFLAGS) -o $@ $< userspace/libcowsnap.c

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
	KERNELS="$(KERNELS)" FILTER="$(FILTER)" LINT="$(LINT)" PKG="$(PKG)" \
		bash scripts/check.sh

# The model-checked stress test alone for MINUTES minutes per kernel
# (default 10, on 6.1); the seed is printed, COWSNAP_SEED=... replays it.
MINUTES ?= 10
stress:
	COWSNAP_STRESS_SECONDS=$$(( $(MINUTES) * 60 )) \
	COWSNAP_PROG_TIMEOUT=$$(( $(MINUTES) * 60 + 600 )) \
	COWSNAP_VM_TIMEOUT=$$(( $(MINUTES) * 60 + 900 )) \
	KERNELS="$(or $(KERNELS),6.1)" FILTER=stress_model LINT=0 PKG=0 \
		bash scripts/check.sh

vm: guest-bin
	bash scripts/setup.sh >/dev/null
	$(MAKE) bench-module KERNEL=$(or $(KERNELS),6.1)
	bash scripts/mkinitramfs.sh $(or $(KERNELS),6.1)
	bash scripts/vm.sh $(or $(KERNELS),6.1) shell

demo:
	KERNEL=$(or $(KERNELS),6.1) bash scripts/demo.sh

# Benchmarks (tests/bench_cowsnap.c) on every kernel of BENCH_KERNELS, one
# guest at a time, then scripts/bench-report.sh writes docs/bench/results.md
# and its plots, and rewrites the summary in README.md's Performance section.
# Each run's log is kept in build/bench/KERNEL.log (and the kernel's in
# KERNEL.console.log), copied to docs/bench/logs (unless BENCH_OUT is set) so
# that `scripts/bench-report.sh docs/bench/logs/{6.1,6.12}.log` redoes the
# report.  BENCH_SIZES (MiB, comma-separated, default 64,256,1024),
# BENCH_PARTS (1-10, comma-separated) and BENCH_REPS ("N" or "N,M" with M
# reps at 1 GiB and more; default 5,3) reach the guest program as
# COWSNAP_BENCH_*.  The default run takes about 12 minutes of
# TCG per kernel (3 reps at 1 GiB keep it there: a rep of parts 1 and 6
# costs over 2 minutes at that size); BENCH_TIMEOUT (seconds) kills a guest
# that hangs.
BENCH_KERNELS = $(or $(KERNELS),6.1 6.12)
BENCH_MEM ?= 6G
BENCH_TIMEOUT ?= 3600
BENCH_SIZES ?= $(COWSNAP_BENCH_SIZES)
BENCH_PARTS ?= $(COWSNAP_BENCH_PARTS)
BENCH_REPS ?= $(COWSNAP_BENCH_REPS)

bench: guest-bin
	bash scripts/setup.sh >/dev/null
	@st=0; for k in $(BENCH_KERNELS); do \
		$(LOCK) $(MAKE) -s bench-run KERNEL=$$k || st=1; \
	done; \
	bash scripts/bench-report.sh $(foreach k,$(BENCH_KERNELS),build/bench/$(k).log) || st=1; \
	if [ -z "$$BENCH_OUT" ]; then mkdir -p docs/bench/logs; \
		for k in $(BENCH_KERNELS); do cp build/bench/$$k.log build/bench/$$k.console.log docs/bench/logs/ || st=1; done; fi; \
	exit $$st

bench-run: bench-module
	bash scripts/mkinitramfs.sh $(KERNEL)
	COWSNAP_VM_MEM=$(BENCH_MEM) COWSNAP_VM_TIMEOUT=$(BENCH_TIMEOUT) \
	COWSNAP_BENCH_SIZES="$(BENCH_SIZES)" COWSNAP_BENCH_PARTS="$(BENCH_PARTS)" \
	COWSNAP_BENCH_REPS="$(BENCH_REPS)" bash scripts/vm.sh $(KERNEL) bench
	@mkdir -p build/bench
	@tr -d '\r' < build/$(KERNEL)/results.log > build/bench/$(KERNEL).log
	@echo "INFO module_src $$(cat build/$(KERNEL)/src/Kbuild build/$(KERNEL)/src/module/* \
		build/$(KERNEL)/src/include/uapi/linux/cowsnap.h | sha1sum | cut -c1-12)" \
		>> build/bench/$(KERNEL).log
	@echo "INFO date $$(date -u '+%Y-%m-%d %H:%M UTC')" >> build/bench/$(KERNEL).log
	@echo "INFO git $$(git rev-parse --short HEAD 2>/dev/null)$$(git diff --quiet HEAD -- module include Kbuild 2>/dev/null || echo +changes)" \
		>> build/bench/$(KERNEL).log
	@tr -d '\r' < build/$(KERNEL)/console.log > build/bench/$(KERNEL).console.log
	@grep -v '^END$$' build/bench/$(KERNEL).log

# The examples' measured runs (examples/*/README.md) on every kernel of
# EXAMPLE_KERNELS, one guest at a time, without the debug switches (like
# the bench): each /bin/example_* in turn, output in
# build/examples/KERNEL.log (the kernel's in KERNEL.console.log).
EXAMPLE_KERNELS = $(or $(KERNELS),6.1 6.12)
EXAMPLES_TIMEOUT ?= 1200

examples: guest-bin
	bash scripts/setup.sh >/dev/null
	@st=0; for k in $(EXAMPLE_KERNELS); do \
		$(LOCK) $(MAKE) -s examples-run KERNEL=$$k || st=1; \
	done; exit $$st

examples-run: bench-module
	bash scripts/mkinitramfs.sh $(KERNEL)
	COWSNAP_VM_TIMEOUT=$(EXAMPLES_TIMEOUT) bash scripts/vm.sh $(KERNEL) examples
	@mkdir -p build/examples
	@tr -d '\r' < build/$(KERNEL)/results.log > build/examples/$(KERNEL).log
	@tr -d '\r' < build/$(KERNEL)/console.log > build/examples/$(KERNEL).console.log
	@grep -v '^END$$' build/examples/$(KERNEL).log
	@grep -q '^END$$' build/examples/$(KERNEL).log || \
		{ echo "examples: the $(KERNEL) guest did not finish"; exit 1; }
	@! grep -q '^EXIT ' build/examples/$(KERNEL).log

lint:
	bash scripts/lint.sh

# Installation.  `make install` builds and installs the module for the
# running kernel (KVER=... or KDIR=... on the command line names another;
# the bench's kernel is never the default here) into
# $(DESTDIR)/lib/modules/KVER/extra, then user space under PREFIX.  Without
# DESTDIR it runs depmod and ldconfig; with it, nothing outside DESTDIR is
# touched.  `make uninstall` removes the same files.
IKVER := $(if $(filter command line environment,$(origin KVER)),$(KVER),$(shell uname -r))
IKDIR := $(if $(filter command line environment,$(origin KDIR)),$(KDIR),/lib/modules/$(IKVER)/build)

install: install-module install-userspace

install-module:
	$(MAKE) -C $(IKDIR) M=$(CURDIR) modules
	$(MAKE) -C $(IKDIR) M=$(CURDIR) INSTALL_MOD_PATH=$(DESTDIR) \
		INSTALL_MOD_DIR=extra modules_install
	$(if $(DESTDIR),,depmod -a $(IKVER))

# The man pages carry the version of module/cowsnap.h.
MANVER := sed '/^\.TH /s/"cowsnap [^"]*"/"cowsnap $(VERSION)"/'

install-userspace: userspace
	install -D -m 0755 build/cowsnap $(DESTDIR)$(BINDIR)/cowsnap
	install -D -m 0644 build/libcowsnap.a $(DESTDIR)$(LIBDIR)/libcowsnap.a
	install -D -m 0755 build/libcowsnap.so \
		$(DESTDIR)$(LIBDIR)/libcowsnap.so.$(VERSION)
	ln -sf libcowsnap.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcowsnap.so.0
	ln -sf libcowsnap.so.0 $(DESTDIR)$(LIBDIR)/libcowsnap.so
	install -d $(DESTDIR)$(PKGCONFIGDIR)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		userspace/cowsnap.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/cowsnap.pc
	install -D -m 0644 userspace/libcowsnap.h \
		$(DESTDIR)$(INCLUDEDIR)/libcowsnap.h
	install -D -m 0644 include/uapi/linux/cowsnap.h \
		$(DESTDIR)$(INCLUDEDIR)/linux/cowsnap.h
	install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man3
	$(MANVER) docs/cowsnap.8 > $(DESTDIR)$(MANDIR)/man8/cowsnap.8
	$(MANVER) docs/libcowsnap.3 > $(DESTDIR)$(MANDIR)/man3/libcowsnap.3
	for f in $(LIBFUNCS); do \
		echo '.so man3/libcowsnap.3' > $(DESTDIR)$(MANDIR)/man3/$$f.3; \
	done
	$(if $(DESTDIR),,test "$$(id -u)" != 0 || ldconfig)

uninstall: uninstall-userspace
	rm -f $(DESTDIR)/lib/modules/$(IKVER)/extra/cowsnap.ko*
	rmdir $(DESTDIR)/lib/modules/$(IKVER)/extra 2>/dev/null; true
	$(if $(DESTDIR),,test ! -d /lib/modules/$(IKVER) || depmod -a $(IKVER))

uninstall-userspace:
	rm -f $(DESTDIR)$(BINDIR)/cowsnap $(DESTDIR)$(LIBDIR)/libcowsnap.a \
		$(DESTDIR)$(LIBDIR)/libcowsnap.so $(DESTDIR)$(LIBDIR)/libcowsnap.so.* \
		$(DESTDIR)$(PKGCONFIGDIR)/cowsnap.pc \
		$(DESTDIR)$(INCLUDEDIR)/libcowsnap.h \
		$(DESTDIR)$(INCLUDEDIR)/linux/cowsnap.h \
		$(DESTDIR)$(MANDIR)/man8/cowsnap.8 \
		$(DESTDIR)$(MANDIR)/man3/libcowsnap.3 \
		$(foreach f,$(LIBFUNCS),$(DESTDIR)$(MANDIR)/man3/$(f).3)
	@# The directories install made, when nothing else is in them.
	rmdir $(DESTDIR)$(INCLUDEDIR)/linux $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man8 2>/dev/null; true
	$(if $(DESTDIR),,test "$$(id -u)" != 0 || ldconfig)

# DKMS.  dkms-src puts the module's sources (Kbuild, module/*.[ch], the UAPI
# header; no build output) and dkms.conf with this version into
# $(DESTDIR)/usr/src/cowsnap-VERSION; debian/rules uses it too.
# dkms-install adds that tree to DKMS and builds and installs the module for
# the running kernel (or KVER=...); kernels outside dkms.conf's
# BUILD_EXCLUSIVE_KERNEL (6.1 to 6.12) are skipped.  dkms-uninstall removes
# it from every kernel and /usr/src.
DKMSDIR = $(DESTDIR)/usr/src/cowsnap-$(VERSION)

dkms-src:
	@test -n "$(VERSION)" || { echo "no COWSNAP_VERSION in module/cowsnap.h"; exit 1; }
	rm -rf $(DKMSDIR)
	install -d $(DKMSDIR)/module $(DKMSDIR)/include/uapi/linux
	install -m 0644 Kbuild $(DKMSDIR)/
	install -m 0644 module/*.c module/*.h $(DKMSDIR)/module/
	install -m 0644 include/uapi/linux/*.h $(DKMSDIR)/include/uapi/linux/
	sed 's/#MODULE_VERSION#/$(VERSION)/' dkms.conf > $(DKMSDIR)/dkms.conf

dkms-install:
	dkms status -m cowsnap -v $(VERSION) | grep -q . && \
		dkms remove -m cowsnap -v $(VERSION) --all; true
	$(MAKE) dkms-src DESTDIR=
	dkms add -m cowsnap -v $(VERSION)
	dkms install -m cowsnap -v $(VERSION) -k $(IKVER) || { st=$$?; \
		test $$st = 77 && echo "dkms: $(IKVER) is outside BUILD_EXCLUSIVE_KERNEL; skipped"; \
		test $$st = 77; }

dkms-uninstall:
	dkms status -m cowsnap -v $(VERSION) | grep -q . && \
		dkms remove -m cowsnap -v $(VERSION) --all; true
	rm -rf /usr/src/cowsnap-$(VERSION)

# Debian packages (cowsnap-dkms, libcowsnap0, libcowsnap-dev, cowsnap-tools)
# in build/deb/, checked with lintian (LINTIAN=0 skips): scripts/mkdeb.sh.
deb:
	LINTIAN="$(or $(LINTIAN),1)" bash scripts/mkdeb.sh

clean:
	rm -rf build
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null || true
