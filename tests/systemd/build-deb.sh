#!/bin/sh
# build-deb.sh TARBALL DEBIAN_DIR OUTDIR -- build xmig's Debian package
# from a `make dist` tarball and the tree's debian/, out of the source
# tree: the tarball is unpacked into OUTDIR/src, debian/ copied in, and
# `dpkg-buildpackage -us -uc -b` run there; the .deb lands in OUTDIR (the
# build log in OUTDIR/build.log).
#
# DEB_BUILD_OPTIONS defaults to "nocheck parallel=$(nproc)": the callers
# (make check-systemd, tests/quickstart.sh) have run make check on the
# same sources already.  Set it to run the suite inside the package build.
set -eu

[ $# -eq 3 ] || { echo "usage: $0 TARBALL DEBIAN_DIR OUTDIR" >&2; exit 2; }
tarball=$1 debdir=$2 out=$3
[ -f "$tarball" ] || { echo "build-deb: no tarball $tarball" >&2; exit 1; }
[ -f "$debdir/control" ] || { echo "build-deb: no $debdir/control" >&2; exit 1; }
for t in dpkg-buildpackage dh; do
	command -v $t >/dev/null ||
	    { echo "build-deb: $t is missing (apt-get install dpkg-dev debhelper)" >&2; exit 1; }
done

start=$(date +%s)
rm -rf "$out/src"
mkdir -p "$out/src"
rm -f "$out"/*.deb
tar -xzf "$tarball" -C "$out/src"
src=$(find "$out/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -n "$src" ] || { echo "build-deb: $tarball holds no directory" >&2; exit 1; }
cp -a "$debdir" "$src/debian"
echo "build-deb: dpkg-buildpackage in $src (log: $out/build.log)"
if ! (cd "$src" && DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-"nocheck parallel=$(nproc 2>/dev/null || echo 2)"} \
    dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
	exit 1
fi
mv "$out"/src/*.deb "$out/"
mv "$out"/src/*.buildinfo "$out"/src/*.changes "$out/" 2>/dev/null || true
for d in "$out"/*.deb; do
	echo "build-deb: $d ($(( $(date +%s) - start )) s)"
done
