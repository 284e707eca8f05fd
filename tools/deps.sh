#!/bin/sh
# Installs the Debian packages the build and tests need. Idempotent.
# Adds a deb-src entry derived from the machine's own bookworm sources (so no
# mirror is named here); cpp-httplib's header comes from that source
# package.
set -eu
[ "$(id -u)" = 0 ] || exec sudo "$0" "$@"
export DEBIAN_FRONTEND=noninteractive

SRC=/etc/apt/sources.list.d/pinniped-deb-src.sources
LEGACY=/etc/apt/sources.list.d/pinniped-deb-src.list
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  found=
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # keep only the stanzas that are plain "deb" stanzas, flip them to deb-src
    if awk 'BEGIN{RS="";ORS="\n\n"} /(^|\n)Types:[ \t]*deb([ \t]|\n|$)/ {gsub(/Types:[ \t]*deb/,"Types: deb-src"); print; n++} END{exit n?0:1}' "$f" >>"$SRC.tmp"; then
      found=1
    fi
  done
  if [ -n "$found" ]; then mv "$SRC.tmp" "$SRC"; else rm -f "$SRC.tmp"; fi
  if [ -z "$found" ] && [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list >"$LEGACY"
  fi
fi

# The ARM builds (make static/test ARCH=arm64|armhf) use Debian's multiarch
# -dev packages of those architectures.
for a in arm64 armhf; do
  dpkg --print-foreign-architectures | grep -qx "$a" || dpkg --add-architecture "$a"
done

# apt-get update may exit non-zero while one index is mid-sync; retry and go on
for _ in 1 2 3; do
  if apt-get update -q >/dev/null; then break; fi
  sleep 5
done

# clang: the test suites' compiler (the Makefile's TEST_CXX); with its sanitizer and
# libFuzzer runtimes (only recommended by clang, so
# named) and llvm-symbolizer for readable reports: `make fuzz` (fuzz/README.md).
# valgrind: `make bench` counts instructions with callgrind.
apt-get install -y -q --no-install-recommends \
  g++ make picojson-dev catch2 libyaml-dev libcrypt-dev \
  dpkg-dev openssl ca-certificates iproute2 procps binutils python3 graphviz curl jq \
  g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user-static \
  libyaml-dev:arm64 libcrypt-dev:arm64 \
  libyaml-dev:armhf libcrypt-dev:armhf \
  skopeo umoci dnsmasq-base containerd runc \
  clang libclang-rt-14-dev llvm clang-format valgrind >/dev/null
# kubectl for the e2e suite, the demo and the benchmark: a fresh Debian 12
# has none; its kubernetes-client is kubectl 1.20, the e2e server's version.
# A kubectl already on PATH (newer, or from another package that owns
# /usr/bin/kubectl) is kept.
if ! command -v kubectl >/dev/null; then
  apt-get install -y -q --no-install-recommends kubernetes-client >/dev/null
fi
# chromium and the locked npm packages of the OIDC login tests (tests/oidc)
"$(dirname "$0")/oidc-deps.sh"
echo "deps: installed"
