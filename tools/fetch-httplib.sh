#!/bin/sh
# Fetches cpp-httplib's header-only httplib.h from Debian's source package
# into $1 (an ignored build folder) and checks its version. Needs a deb-src
# entry (make deps adds one).
set -eu
out=$(realpath -m "$1")
want_version=0.11.4
pkg_version=0.11.4+ds-1+deb12u1
work=$(dirname "$(dirname "$out")")/httplib-src
rm -rf "$work" && mkdir -p "$work" "$(dirname "$out")"
cd "$work"
if ! apt-get source --download-only "cpp-httplib=$pkg_version" >fetch.log 2>&1; then
  # A newer Debian revision of the same upstream version is acceptable.
  apt-get source --download-only cpp-httplib >>fetch.log 2>&1 || {
    cat fetch.log >&2
    echo "fetch-httplib: apt-get source cpp-httplib failed; run 'make deps' (needs a deb-src entry)" >&2
    exit 1
  }
fi
dsc=$(ls cpp-httplib_*.dsc | head -n1)
dpkg-source --no-check -x "$dsc" src >>fetch.log 2>&1
got=$(sed -n 's/^#define CPPHTTPLIB_VERSION "\(.*\)"/\1/p' src/httplib.h)
if [ "$got" != "$want_version" ]; then
  echo "fetch-httplib: got cpp-httplib $got, want $want_version" >&2
  exit 1
fi
cp src/httplib.h "$out.tmp"
mv "$out.tmp" "$out"
echo "fetch-httplib: cpp-httplib $got from $dsc, sha256 $(sha256sum "$out" | cut -c1-16)..."
