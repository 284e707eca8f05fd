#!/bin/sh
# `make bench`: instructions per crypto operation of an exchange, counted by
# valgrind's callgrind (bench/crypto_floor.cpp), with a ratio to the same
# operation done by a plain mbedTLS call. The count of one run with one
# operation is subtracted (set-up), so the number is per operation.
# Usage: tools/instructions.sh BENCH_BINARY [COUNT]
set -eu
bin=$1 count=${2:-20}
if ! command -v valgrind >/dev/null 2>&1; then
  echo "crypto floor (instructions): skipped, valgrind is not installed (make deps)"
  exit 0
fi
instructions() { # MODE N -> instructions of the whole run
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : *\([0-9][0-9]*\).*/\1/p'
}
per_op() { # MODE -> instructions per operation
  one=$(instructions "$1" 1)
  many=$(instructions "$1" $((count + 1)))
  [ -n "$one" ] && [ -n "$many" ] || { echo "callgrind gave no count for $1" >&2; exit 1; }
  echo $(((many - one) / count))
}
keygen=$(per_op keygen)
keygen_plain=$(per_op keygen-plain)
sign=$(per_op sign)
sign_plain=$(per_op sign-plain)
echo "crypto floor (callgrind, $count operations each, instructions per operation):"
awk -v k="$keygen" -v kp="$keygen_plain" -v s="$sign" -v sp="$sign_plain" 'BEGIN {
  printf "  %-58s %6.2f M   (plain mbedtls_ecp_gen_key %6.2f M: %.2fx fewer)\n", "P-256 key generation", k / 1e6, kp / 1e6, kp / k
  printf "  %-58s %6.2f M   (plain mbedtls_pk_sign alone %6.2f M: %.2fx fewer)\n", "certificate, signed (Signer::issue: DER, SHA-256, ECDSA)", s / 1e6, sp / 1e6, sp / s
  printf "  %-58s %6.2f M\n", "both, the crypto of one exchange", (k + s) / 1e6
}'
