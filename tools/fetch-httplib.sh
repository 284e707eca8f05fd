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
# One change to the header: cpp-httplib parses a Range request header with
# std::regex, whose recursion deepens with the header's length (a 6 KB
# header overflows a thread's stack) and whose ranges can multiply an
# answer's size. Nothing pinniped serves needs ranges, so the parser is never
# called and every answer is whole. The header says so at its top.
range='  if (req.has_header("Range")) {'
if [ "$(grep -cF "$range" src/httplib.h)" != 1 ]; then
  echo "fetch-httplib: unexpected httplib.h: the Range parsing to disable is not there once" >&2
  exit 1
fi
sed -i 's/^  if (req.has_header("Range")) {$/  if (false \&\& req.has_header("Range")) { \/\/ pinniped: ranges are never parsed/' src/httplib.h
sed -i '1i // Patched by pinniped'"'"'s tools/fetch-httplib.sh: Range headers are never parsed.\n#define PINNIPED_HTTPLIB_NO_RANGES 1' src/httplib.h
grep -qF 'if (false && req.has_header("Range"))' src/httplib.h || { echo "fetch-httplib: patching Range failed" >&2; exit 1; }
cp src/httplib.h "$out.tmp"
mv "$out.tmp" "$out"
echo "fetch-httplib: cpp-httplib $got from $dsc, sha256 $(sha256sum "$out" | cut -c1-16)..."
