#!/bin/sh
# What the static binary is made of: tools/size-contributors.sh ARCH.
# Reads build/static/ARCH/pinniped.debug (the shipped binary before it is
# stripped: `make static ARCH=...` makes both) and sums `nm --size-sort` by
# origin: pinniped's own code, cpp-httplib, picojson, mbedTLS, libyaml,
# libstdc++ and the C libraries; then the largest single symbols. Sizes are
# of code and data symbols (text, read-only data, data), not of the file,
# which adds headers and padding.
set -eu
arch=${1:-amd64}
case $arch in
  amd64) nm=x86_64-linux-gnu-nm ;;
  arm64) nm=aarch64-linux-gnu-nm ;;
  armhf) nm=arm-linux-gnueabihf-nm ;;
  *) echo "size-contributors: unknown architecture $arch" >&2; exit 1 ;;
esac
command -v "$nm" >/dev/null || nm=nm
bin=build/static/$arch/pinniped.debug
[ -r "$bin" ] || { echo "size-contributors: no $bin (make static ARCH=$arch)" >&2; exit 1; }
syms=$(mktemp /tmp/pinniped-size-XXXXXX)
trap 'rm -f "$syms"' EXIT
"$nm" --size-sort -S --radix=d "$bin" >"$syms"
awk -v arch="$arch" '
  # Origins from the (mangled) names: C names as they are, C++ ones by
  # their outermost namespace.
  function origin(n) {
    if (n ~ /^(mbedtls_|ecp_|ssl_|x509|mpi_|pk_|ecdsa|ecdh|rsa_|aes_|gcm_|chacha|poly1305|sha(1|256|512)_|ctr_drbg|entropy|oid_|asn1|base64|pem_)/) return "mbedTLS"
    if (n ~ /^yaml_/) return "libyaml"
    if (n ~ /7httplib/) return "cpp-httplib"
    if (n ~ /8picojson/) return "picojson"
    if (n ~ /8pinniped|_GLOBAL__N_1|^main$/) return "pinniped"
    if (n ~ /^_Z/) return "libstdc++"
    return "C libraries (glibc, libxcrypt, libgcc)"
  }
  {
    type = $3
    if (type !~ /^[tTrRdDwWvV]$/) next  # code and data with bytes in the file (not bss)
    size = $2 + 0
    o = origin($4)
    total[o] += size; all += size
    if (size > top_size[5]) {
      top_size[5] = size; top_name[5] = $4; top_origin[5] = o
      for (i = 5; i > 1 && top_size[i] > top_size[i - 1]; i--) {
        t = top_size[i]; top_size[i] = top_size[i - 1]; top_size[i - 1] = t
        t = top_name[i]; top_name[i] = top_name[i - 1]; top_name[i - 1] = t
        t = top_origin[i]; top_origin[i] = top_origin[i - 1]; top_origin[i - 1] = t
      }
    }
  }
  END {
    printf "static binary %s, by origin (nm, code and data symbols):\n", arch
    n = 0
    for (o in total) { names[++n] = o }
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (total[names[j]] > total[names[i]]) { t = names[i]; names[i] = names[j]; names[j] = t }
    for (i = 1; i <= n; i++) printf "  %-40s %8.1f KiB  %5.1f%%\n", names[i], total[names[i]] / 1024, 100 * total[names[i]] / all
    printf "  %-40s %8.1f KiB\n", "all", all / 1024
    printf "largest symbols:\n"
    for (i = 1; i <= 5; i++) if (top_size[i]) printf "  %8.1f KiB  %-40s %s\n", top_size[i] / 1024, top_origin[i], top_name[i]
  }' "$syms" | c++filt | cut -c1-110
