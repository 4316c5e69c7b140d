#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make deb`: build the Debian packages cowsnap-dkms, libcowsnap0,
# libcowsnap-dev and cowsnap-tools (and the native source package) with
# dpkg-buildpackage into build/deb/, then run lintian on them.
#   LINTIAN=0 skips lintian.  Installs the build dependencies with apt-get
#   when they are missing (as root).
# The build runs in build/deb/cowsnap-VERSION, a copy of the project's source
# files (what git tracks or would track: no .git, no build output).  Its
# log is build/deb/build.log, lintian's build/deb/lintian.log.  Exits
# non-zero when the build fails or lintian reports an error.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export DEBIAN_FRONTEND=noninteractive
# Only the four packages: no -dbgsym packages beside them.
export DEB_BUILD_OPTIONS="noautodbgsym ${DEB_BUILD_OPTIONS:-}"
version=$(sed -n 's/^#define COWSNAP_VERSION[[:space:]]*"\(.*\)"/\1/p' module/cowsnap.h)
[ -n "$version" ] || { echo "mkdeb: no COWSNAP_VERSION in module/cowsnap.h" >&2; exit 1; }

deps="debhelper dh-dkms dkms dpkg-dev fakeroot gcc make libc6-dev"
[ "${LINTIAN:-1}" = 0 ] || deps="$deps lintian"
missing=""
for p in $deps; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "package: installing$missing" >&2
	apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing >/dev/null
fi

out=build/deb
src=$out/cowsnap-$version
rm -rf "$out"
mkdir -p "$src"
echo "package: copying the sources to $src" >&2
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[ -f "$f" ] && printf '%s\0' "$f"
		done | xargs -0 cp --parents -t "$src"
else
	tar -c --exclude=./.git --exclude=./build --exclude='*.o' \
		--exclude='*.ko' --exclude='.*.cmd' --exclude='*.mod*' \
		--exclude=Module.symvers --exclude=modules.order . | tar -x -C "$src"
fi

echo "package: building debs for $version (dpkg-buildpackage, log in $out/build.log)" >&2
if ! (cd "$src" && dpkg-buildpackage -us -uc -j"$(nproc)") > "$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	echo "mkdeb: dpkg-buildpackage failed ($out/build.log)" >&2
	exit 1
fi
rm -rf "$src"
ls "$out"/*.deb >&2

[ "${LINTIAN:-1}" = 0 ] && exit 0
echo "package: lintian" >&2
rc=0
lintian --fail-on error "$out"/cowsnap_"$version"_*.changes > "$out/lintian.log" 2>&1 || rc=$?
cat "$out/lintian.log" >&2
echo "package: lintian: $(grep -c '^E: ' "$out/lintian.log") errors," \
	"$(grep -c '^W: ' "$out/lintian.log") warnings" >&2
exit $rc
