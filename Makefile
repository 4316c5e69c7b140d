# SPDX-License-Identifier: GPL-2.0
# cowsnap: `make` builds the module and user space for one kernel,
# `make check` runs the test suite in Debian's kernels under TCG.

CACHE ?= $(or $(COWSNAP_CACHE),/var/cache/cowsnap)
# Default kernel: the bench's 6.1 when set up, else the running kernel.
KVER ?= $(or $(shell awk '$$1 == "6.1" { print $$2 }' $(CACHE)/kernels 2>/dev/null),$(shell uname -r))
KDIR ?= /lib/modules/$(KVER)/build
KERNELS ?=
FILTER ?=
PREFIX ?= /usr/local
CC ?= gcc
CFLAGS ?= -O2 -g
WFLAGS := -Wall -Wextra -Wno-unused-parameter
UCFLAGS = $(CFLAGS) $(WFLAGS) -Iinclude/uapi -Iuserspace

TESTS := $(patsubst tests/%.c,build/guest-bin/%,$(wildcard tests/test_*.c))
HELPERS := $(patsubst tests/%.c,build/guest-bin/%,$(wildcard tests/helper_*.c))

.PHONY: all module userspace guest-bin bench-module check vm demo lint \
	install clean

all: module userspace

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

userspace:

# Static programs for the guest.
guest-bin: $(TESTS) $(HELPERS)

build/guest-bin/%: tests/%.c tests/*.h include/uapi/linux/cowsnap.h
	@mkdir -p $(dir $@)
	$(CC) -static $(UCFLAGS) -Itests -o $@ $< -lpthread

# The module built for one bench kernel in its own copy of the tree.
bench-module:
	@test -n "$(KERNEL)" || { echo "KERNEL= needed"; exit 1; }
	@mkdir -p build/$(KERNEL)/src
	@cp -r Kbuild module include build/$(KERNEL)/src/
	$(MAKE) -C $$(awk '$$1 == "$(KERNEL)" { print $$5 }' $(CACHE)/kernels) \
		M=$(CURDIR)/build/$(KERNEL)/src W=1 modules
	@cp build/$(KERNEL)/src/cowsnap.ko build/$(KERNEL)/cowsnap.ko

check:
	KERNELS="$(KERNELS)" FILTER="$(FILTER)" bash scripts/check.sh

vm: guest-bin
	bash scripts/setup.sh >/dev/null
	$(MAKE) bench-module KERNEL=$(or $(KERNELS),6.1)
	bash scripts/mkinitramfs.sh $(or $(KERNELS),6.1)
	bash scripts/vm.sh $(or $(KERNELS),6.1) shell

demo: guest-bin
	bash scripts/setup.sh >/dev/null
	$(MAKE) -s bench-module KERNEL=$(or $(KERNELS),6.1)
	bash scripts/mkinitramfs.sh $(or $(KERNELS),6.1)
	bash scripts/vm.sh $(or $(KERNELS),6.1) demo
	@tr -d '\r' < build/$(or $(KERNELS),6.1)/results.log | grep -v '^END$$'

lint:
	bash scripts/lint.sh

install: all
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install

clean:
	rm -rf build
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null || true
