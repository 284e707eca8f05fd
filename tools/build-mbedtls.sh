#!/bin/sh
# Builds mbedTLS 2.28 from Debian's source package with pinniped's own
# configuration, for one architecture: tools/build-mbedtls.sh DEPS ARCH.
# Writes DEPS/include/mbedtls (the configured headers: every build of the
# header compiles against them) and DEPS/lib/ARCH/libmbed{crypto,x509,tls}.a,
# then DEPS/lib/ARCH/.stamp. Needs a deb-src entry (make deps adds one).
#
# Why not Debian's libmbedtls-dev: its configuration has everything on
# (three TLS versions, DTLS, 15 curves, DES, Camellia, ARIA, static-RSA and
# PSK key exchanges, self tests...), and the ciphersuite table alone links
# every cipher into the static binary. Ours keeps what pinniped uses: TLS 1.2
# with ECDHE and AEAD (AES-GCM, ChaCha20-Poly1305), X25519 and the NIST
# curves P-256/384/521, RSA and ECDSA, X.509 and PKCS#10 parsing, session
# tickets, CTR-DRBG; and a larger fixed-point window for elliptic-curve
# arithmetic (MBEDTLS_ECP_WINDOW_SIZE 6: fewer instructions per signature
# and key, a few KiB more per precomputed curve). The library is built at
# -O2 (its bignum and curve code is the exchange's floor: -Os costs about
# 18% more instructions there) with -ffunction-sections, so that the static
# link drops what is not called.
set -eu
deps=$(realpath -m "$1") arch=$2
want=2.28.3
case $arch in
  amd64) cc=x86_64-linux-gnu-gcc ar=x86_64-linux-gnu-ar ;;
  arm64) cc=aarch64-linux-gnu-gcc ar=aarch64-linux-gnu-ar ;;
  armhf) cc=arm-linux-gnueabihf-gcc ar=arm-linux-gnueabihf-ar ;;
  *) echo "build-mbedtls: unknown architecture $arch" >&2; exit 1 ;;
esac
command -v "$cc" >/dev/null || { echo "build-mbedtls: $cc not found (make deps)" >&2; exit 1; }
src=$deps/mbedtls-src
lock=$deps/.mbedtls.lock
mkdir -p "$deps"
# The source and the configured headers are shared by every architecture:
# made once, under a lock (two architectures may build at once).
# Configured again whenever this script changes (its hash is the marker).
config_id=$(sha256sum "$0" | cut -c1-16)
exec 9>"$lock"
flock 9
if [ "$(cat "$src/.configured" 2>/dev/null)" != "$config_id" ]; then
  rm -rf "$src" && mkdir -p "$src"
  (
    cd "$src"
    apt-get source --download-only "mbedtls=$want-1" >fetch.log 2>&1 ||
      apt-get source --download-only mbedtls >>fetch.log 2>&1 || {
      cat fetch.log >&2
      echo "build-mbedtls: apt-get source mbedtls failed; run 'make deps' (needs a deb-src entry)" >&2
      exit 1
    }
    dpkg-source --no-check -x "$(ls mbedtls_*.dsc | head -n1)" tree >>fetch.log 2>&1
    got=$(sed -n 's/^#define MBEDTLS_VERSION_STRING *"\(.*\)"/\1/p' tree/include/mbedtls/version.h)
    [ "$got" = "$want" ] || { echo "build-mbedtls: got mbedTLS $got, want $want" >&2; exit 1; }
    cd tree
    c() { python3 scripts/config.py "$@"; }
    # Off: what pinniped never negotiates, parses or calls.
    for o in MBEDTLS_SSL_PROTO_TLS1 MBEDTLS_SSL_PROTO_TLS1_1 MBEDTLS_SSL_PROTO_DTLS MBEDTLS_SSL_DTLS_ANTI_REPLAY \
      MBEDTLS_SSL_DTLS_HELLO_VERIFY MBEDTLS_SSL_DTLS_CLIENT_PORT_REUSE MBEDTLS_SSL_DTLS_BADMAC_LIMIT \
      MBEDTLS_SSL_DTLS_CONNECTION_ID MBEDTLS_SSL_DTLS_SRTP MBEDTLS_SSL_CBC_RECORD_SPLITTING MBEDTLS_SSL_RENEGOTIATION \
      MBEDTLS_SSL_COOKIE_C MBEDTLS_SSL_CACHE_C MBEDTLS_SSL_TRUNCATED_HMAC MBEDTLS_SSL_ENCRYPT_THEN_MAC \
      MBEDTLS_KEY_EXCHANGE_PSK_ENABLED MBEDTLS_KEY_EXCHANGE_DHE_PSK_ENABLED MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED \
      MBEDTLS_KEY_EXCHANGE_RSA_PSK_ENABLED MBEDTLS_KEY_EXCHANGE_RSA_ENABLED MBEDTLS_KEY_EXCHANGE_DHE_RSA_ENABLED \
      MBEDTLS_KEY_EXCHANGE_ECDH_ECDSA_ENABLED MBEDTLS_KEY_EXCHANGE_ECDH_RSA_ENABLED \
      MBEDTLS_KEY_EXCHANGE_ECJPAKE_ENABLED MBEDTLS_ECJPAKE_C \
      MBEDTLS_ECP_DP_SECP192R1_ENABLED MBEDTLS_ECP_DP_SECP224R1_ENABLED MBEDTLS_ECP_DP_SECP192K1_ENABLED \
      MBEDTLS_ECP_DP_SECP224K1_ENABLED MBEDTLS_ECP_DP_SECP256K1_ENABLED MBEDTLS_ECP_DP_BP256R1_ENABLED \
      MBEDTLS_ECP_DP_BP384R1_ENABLED MBEDTLS_ECP_DP_BP512R1_ENABLED MBEDTLS_ECP_DP_CURVE448_ENABLED \
      MBEDTLS_DES_C MBEDTLS_ARC4_C MBEDTLS_BLOWFISH_C MBEDTLS_CAMELLIA_C MBEDTLS_ARIA_C MBEDTLS_XTEA_C \
      MBEDTLS_CCM_C MBEDTLS_CMAC_C MBEDTLS_NIST_KW_C MBEDTLS_HKDF_C MBEDTLS_DHM_C MBEDTLS_MD5_C \
      MBEDTLS_RIPEMD160_C MBEDTLS_PKCS5_C MBEDTLS_PKCS12_C MBEDTLS_CIPHER_MODE_CFB MBEDTLS_CIPHER_MODE_OFB \
      MBEDTLS_CIPHER_MODE_CTR MBEDTLS_CIPHER_MODE_XTS MBEDTLS_CIPHER_PADDING_ONE_AND_ZEROS \
      MBEDTLS_CIPHER_PADDING_ZEROS_AND_LEN MBEDTLS_CIPHER_PADDING_ZEROS MBEDTLS_X509_CRL_PARSE_C \
      MBEDTLS_X509_CREATE_C MBEDTLS_X509_CRT_WRITE_C MBEDTLS_X509_CSR_WRITE_C MBEDTLS_PEM_WRITE_C \
      MBEDTLS_TIMING_C MBEDTLS_SELF_TEST MBEDTLS_VERSION_FEATURES MBEDTLS_DEBUG_C MBEDTLS_PSA_CRYPTO_C \
      MBEDTLS_PSA_CRYPTO_STORAGE_C MBEDTLS_PSA_ITS_FILE_C MBEDTLS_LMS_C; do
      c unset "$o" 2>/dev/null || true
    done
    # On: shared TLS session-ticket keys need mbedTLS's locking (as Debian).
    c set MBEDTLS_THREADING_C
    c set MBEDTLS_THREADING_PTHREAD
    c set MBEDTLS_ECP_WINDOW_SIZE 6
    # The server's handshake signature through pinniped's own signing
    # (a prepared curve group per thread; see async_sign_start).
    c set MBEDTLS_SSL_ASYNC_PRIVATE
    # The configuration must hold together: mbedTLS checks it at compile time.
  )
  rm -rf "$deps/include/mbedtls"
  mkdir -p "$deps/include"
  cp -r "$src/tree/include/mbedtls" "$deps/include/mbedtls"
  echo "$config_id" >"$src/.configured"
fi
flock -u 9
# One build per architecture at a time (make may ask twice at once: the
# image and a cross sub-make); the second finds it done.
mkdir -p "$deps/lib/$arch"
exec 8>"$deps/lib/.mbedtls-$arch.lock"
flock 8
if [ "$(cat "$deps/lib/$arch/.stamp" 2>/dev/null)" = "$config_id" ]; then
  touch "$deps/lib/$arch/.stamp"
  exit 0
fi
work=$deps/mbedtls-build-$arch
rm -rf "$work"
cp -r "$src/tree" "$work"
jobs=$(nproc 2>/dev/null || echo 2)
make -C "$work/library" -j"$jobs" CC="$cc" AR="$ar" \
  CFLAGS="-O2 -ffunction-sections -fdata-sections -D_FILE_OFFSET_BITS=64" \
  libmbedcrypto.a libmbedx509.a libmbedtls.a >"$work.log" 2>&1 || {
  tail -n 30 "$work.log" >&2
  echo "build-mbedtls: building for $arch failed (log: $work.log)" >&2
  exit 1
}
for l in libmbedcrypto.a libmbedx509.a libmbedtls.a; do cp "$work/library/$l" "$deps/lib/$arch/$l.tmp" && mv "$deps/lib/$arch/$l.tmp" "$deps/lib/$arch/$l"; done
rm -rf "$work"
echo "$config_id" >"$deps/lib/$arch/.stamp"
echo "build-mbedtls: mbedTLS $want for $arch ($(du -cb "$deps/lib/$arch"/*.a | tail -n1 | cut -f1) bytes of archives)"
