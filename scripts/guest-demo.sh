#!/bin/sh
# The walkthrough `make demo` runs inside the guest (as /demo.sh).
set -e
run() { echo; echo "\$ $*"; "$@"; }
run cowsnap create shop 64M --mode 0600
run helper_poke shop 0 "cart: 3 apples"
run helper_poke shop 4096 "total: 4.50"
run cowsnap snap shop before-sale
run helper_poke shop 0 "cart: 30 apples"
run helper_poke shop 8192 "coupon: SALE"
run cowsnap list shop
run cowsnap diff shop before-sale
run helper_poke shop 0
run cowsnap restore shop before-sale
run helper_poke shop 0
run cowsnap dump shop@before-sale /tmp/shop.dump 2>&1 | cat
run ls -l /tmp/shop.dump
run cowsnap load shop-copy /tmp/shop.dump 2>&1 | cat
run helper_poke shop-copy 4096
run cowsnap clone shop before-sale shop-branch
run cowsnap list
run cowsnap -H -p list
run cowsnap stats
run cowsnap destroy shop-branch
run cowsnap destroy shop-copy
run cowsnap destroy shop
echo
echo "demo done"
