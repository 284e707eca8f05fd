#!/bin/sh
# Where the instructions of one TokenCredentialRequest exchange go, counted
# by valgrind's callgrind (bench/exchange_phases.cpp: the concierge and its
# client in one process, the webhook in a child process that is not
# counted), and the same crypto done by OpenSSL on this machine. Each bench
# runs twice, with 1 and with 1 + COUNT exchanges (after 1 warm-up); the
# difference / COUNT is per exchange and repeats from run to run.
# A phase is the inclusive count of the functions that make it
# (callgrind_annotate --inclusive=yes --tree=caller): a whole function, or
# one caller's calls of it.
# Usage: tools/phases.sh BENCH_EXCHANGE_PHASES [COUNT] [BENCH_CRYPTO_FLOOR]
set -eu
bin=$1 count=${2:-20} floor=${3:-$(dirname "$1")/bench-crypto-floor}
for tool in valgrind callgrind_annotate; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "exchange phases (instructions): skipped, $tool is not installed (make deps)"
    exit 0
  fi
done
started=$(date +%s)
work=$(mktemp -d /tmp/pinniped-phases-XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT PIPE TERM  # through the EXIT trap: a closed pipe (| head) leaves no files

# callgrind NAME CMD... : runs CMD under callgrind; NAME.tree is its caller
# tree with inclusive counts, NAME.log what CMD and valgrind said.
callgrind() {
  cg=$1
  shift
  if ! valgrind --tool=callgrind --callgrind-out-file="$work/$cg.out" "$@" >"$work/$cg.log" 2>&1; then
    echo "callgrind run failed: $*" >&2
    tail -20 "$work/$cg.log" >&2
    exit 1
  fi
  callgrind_annotate --inclusive=yes --tree=caller --auto=no --threshold=100 "$work/$cg.out" >"$work/$cg.tree"
  rm -f "$work/$cg.out"
}

# measure TREE < SPECS: one "KEY VALUE" line per spec line. A spec is
# KEY|total, KEY|fn|NAME (a function's inclusive count), KEY|arc|CALLEE|CALLER
# (the inclusive count of CALLER's calls of CALLEE), KEY|calls|CALLEE|CALLER
# (how many), KEY|piece|FILE|NAME (what NAME runs of FILE inlined, callees
# included), KEY|percall|CALLEE (cost / calls of CALLEE's busiest call site).
# NAME, CALLEE, CALLER: the demangled name's beginning, compared literally.
measure() {
  awk -F'|' -v tree="$1" '
    function starts(s, p) { return substr(s, 1, length(p)) == p }
    BEGIN {
      first_arc = 1
      while ((getline line < tree) > 0) {
        if (line ~ /PROGRAM TOTALS/) { v = line; sub(/^ */, "", v); sub(/ .*/, "", v); gsub(/,/, "", v); total = v; continue }
        if (!match(line, /^ *[0-9,]+ \( *[0-9.]+%\)  [*<]  ?/)) continue
        v = substr(line, 1, RLENGTH); kind = v ~ /\*/ ? "*" : "<"
        sub(/ \(.*/, "", v); gsub(/[ ,]/, "", v)
        rest = substr(line, RLENGTH + 1)
        sub(/ \[\/[^]]*\]$/, "", rest)  # the object file
        calls = 0
        if (kind == "<" && match(rest, / \([0-9,]+x\)$/)) {
          calls = substr(rest, RSTART + 2, RLENGTH - 4); gsub(/,/, "", calls); rest = substr(rest, 1, RSTART - 1)
        }
        c = index(rest, ":"); file = substr(rest, 1, c - 1); fn = substr(rest, c + 1)
        if (kind == "<") { na++; acost[na] = v + 0; acalls[na] = calls + 0; acaller[na] = fn; continue }
        nf++; fcost[nf] = v + 0; ffile[nf] = file; fname[nf] = fn
        for (i = first_arc; i <= na; i++) acallee[i] = fn
        first_arc = na + 1
      }
    }
    {
      key = $1; r = 0
      if ($2 == "total") r = total
      else if ($2 == "fn") { for (i = 1; i <= nf; i++) if (starts(fname[i], $3) && fcost[i] > r) r = fcost[i] }
      else if ($2 == "piece") { for (i = 1; i <= nf; i++) if (starts(fname[i], $4) && ffile[i] ~ ("(^|/)" $3 "$")) r += fcost[i] }
      else if ($2 == "arc" || $2 == "calls") {
        for (i = 1; i <= na; i++) if (starts(acallee[i], $3) && starts(acaller[i], $4)) r += ($2 == "arc" ? acost[i] : acalls[i])
      } else if ($2 == "percall") {
        best = 0
        for (i = 1; i <= na; i++) if (starts(acallee[i], $3) && acalls[i] > best) { best = acalls[i]; r = acost[i] / acalls[i] }
      }
      printf "%s %.0f\n", key, r
    }'
}

# What one exchange is made of: in the concierge (server side) and in the
# client, which the total leaves out.
exchange_specs() {
  cat <<'EOF'
total|total
client|fn|(anonymous namespace)::client_exchange
hs_server|arc|mbedtls_ssl_handshake|pinniped::TlsServer::serve(
hs_client|arc|mbedtls_ssl_handshake|pinniped::detail::MbedClient::create_and_connect_socket(
hs_client_n|calls|mbedtls_ssl_handshake|pinniped::detail::MbedClient::create_and_connect_socket(
json_parse|arc|pinniped::json::parse(|pinniped::Concierge::create(
json_from|arc|pinniped::TokenCredentialRequest::from_json(|pinniped::Concierge::create(
json_to|arc|pinniped::TokenCredentialRequest::to_json(|pinniped::Concierge::create(
json_send|arc|pinniped::Concierge::send_json(|pinniped::Concierge::create(
json_inl_create|piece|picojson.h|pinniped::Concierge::create(
json_inl_exchange|piece|picojson.h|pinniped::Concierge::exchange(
webhook|fn|pinniped::WebhookAuthenticator::authenticate_unredacted(
webhook_n|calls|pinniped::WebhookAuthenticator::authenticate_unredacted(|pinniped::WebhookAuthenticator::authenticate(
wjson_parse|arc|pinniped::json::parse(|pinniped::WebhookAuthenticator::authenticate_unredacted(
wjson_from|arc|pinniped::TokenReview::from_json(|pinniped::WebhookAuthenticator::authenticate_unredacted(
wjson_to|arc|pinniped::TokenReview::to_json(|pinniped::WebhookAuthenticator::authenticate_unredacted(
wjson_inl|piece|picojson.h|pinniped::WebhookAuthenticator::authenticate_unredacted(
clientkey|fn|pinniped::ClientKey::generate(
generate_ec|fn|pinniped::PrivateKey::generate_ec(
pem_key|arc|pinniped::PrivateKey::to_pem[abi:cxx11](|pinniped::ClientKey::generate(
issue|fn|pinniped::Signer::issue(
pem_cert|arc|pinniped::detail::pem_encode(|pinniped::Signer::issue(
ecdsa|arc|pinniped::PrivateKey::sign[abi:cxx11](|pinniped::detail::sign_certificate(
EOF
}

# run_exchanges NAME [FLAGS]: both runs; prints "KEY PER_EXCHANGE" lines.
run_exchanges() {
  rx=$1
  shift
  callgrind "$rx-1" "$bin" 1 "$@"
  callgrind "$rx-n" "$bin" $((count + 1)) "$@"
  exchange_specs | measure "$work/$rx-1.tree" >"$work/$rx-1.m"
  exchange_specs | measure "$work/$rx-n.tree" >"$work/$rx-n.m"
  awk -v n="$count" 'NR == FNR { one[$1] = $2; next } { printf "%s %.0f\n", $1, ($2 - one[$1]) / n }' \
    "$work/$rx-1.m" "$work/$rx-n.m"
}

# floor_per_op MODE: instructions per operation of bench-crypto-floor MODE.
floor_per_op() {
  callgrind "floor-$1-1" "$floor" "$1" 1
  callgrind "floor-$1-n" "$floor" "$1" $((count + 1))
  one=$(echo 'x|total' | measure "$work/floor-$1-1.tree" | cut -d' ' -f2)
  many=$(echo 'x|total' | measure "$work/floor-$1-n.tree" | cut -d' ' -f2)
  echo $(((many - one) / count))
}

# whole_run NAME CMD...: instructions of the whole process.
whole_run() {
  wr=$1
  shift
  callgrind "$wr" "$@"
  echo 'x|total' | measure "$work/$wr.tree" | cut -d' ' -f2
}

# Native wall time of bench-crypto-floor MODE, microseconds per operation
# (noisy on shared cores; the instruction counts are what repeats).
floor_us() {
  n=200
  t0=$(date +%s%N)
  "$floor" "$1" 1
  t1=$(date +%s%N)
  "$floor" "$1" $((n + 1))
  t2=$(date +%s%N)
  echo $((((t2 - t1) - (t1 - t0)) / n / 1000))
}

run_exchanges new >"$work/new.per"
run_exchanges kept --keep-alive >"$work/kept.per"

have_floor=0
if [ -x "$floor" ]; then
  have_floor=1
  floor_keygen=$(floor_per_op keygen)
  floor_sign=$(floor_per_op sign)
  floor_keygen_us=$(floor_us keygen)
  floor_sign_us=$(floor_us sign)
fi

have_openssl=0
if command -v openssl >/dev/null 2>&1; then
  have_openssl=1
  (
    cd "$work"
    head -c 100 /dev/zero >small
    openssl ecparam -name prime256v1 -genkey -noout -out key.pem 2>/dev/null
  )
  # The CLI, one process per operation, less the same command without it.
  o_gen=$(cd "$work" && whole_run o-gen openssl ecparam -name prime256v1 -genkey -noout -out gen.pem)
  o_gen_base=$(cd "$work" && whole_run o-gen-base openssl ecparam -name prime256v1 -noout)
  o_sign=$(cd "$work" && whole_run o-sign openssl dgst -sha256 -sign key.pem -out sig small)
  o_sign_base=$(cd "$work" && whole_run o-sign-base openssl dgst -sha256 -out /dev/null small)
  # In a warm process (random generator seeded, providers loaded): `openssl
  # speed`'s key and its signing loop, per call.
  callgrind o-speed openssl speed -seconds 1 -mr ecdsap256
  printf '%s\n' 'keygen|percall|EVP_PKEY_keygen' 'sign|percall|EVP_PKEY_sign' | measure "$work/o-speed.tree" \
    >"$work/o-speed.m"
  o_warm_gen=$(sed -n 's/^keygen //p' "$work/o-speed.m")
  o_warm_sign=$(sed -n 's/^sign //p' "$work/o-speed.m")
  # Natively: signatures per second (time, for a time ratio).
  o_speed_sign=$(openssl speed -seconds 1 -mr ecdsap256 2>/dev/null | awk -F: '/^\+F4:/ { print $4 }')
  o_version=$(openssl version | cut -d' ' -f1-2)
fi

awk -v count="$count" -v have_floor="$have_floor" -v fk="${floor_keygen:-0}" -v fs="${floor_sign:-0}" \
  -v fk_us="${floor_keygen_us:-0}" -v fs_us="${floor_sign_us:-0}" \
  -v have_openssl="$have_openssl" -v og="${o_gen:-0}" -v ogb="${o_gen_base:-0}" -v os="${o_sign:-0}" \
  -v osb="${o_sign_base:-0}" -v owg="${o_warm_gen:-0}" -v ows="${o_warm_sign:-0}" -v ospeed="${o_speed_sign:-0}" \
  -v over="${o_version:-}" '
  FILENAME ~ /new.per$/ { a[$1] = $2; next }
  FILENAME ~ /kept.per$/ { k[$1] = $2; next }
  function m(x) { return x / 1e6 }
  function row(name, x) { printf "  %-66s %8.2f %6.1f%%\n", name, m(x), 100 * x / server }
  END {
    server = a["total"] - a["client"]
    json = a["json_parse"] + a["json_from"] + a["json_to"] + a["json_send"] + a["json_inl_create"] + a["json_inl_exchange"]
    wjson = a["wjson_parse"] + a["wjson_from"] + a["wjson_to"] + a["wjson_inl"]
    keygen = a["clientkey"] - a["pem_key"]
    sign = a["issue"] - a["pem_cert"]
    pem = a["pem_key"] + a["pem_cert"]
    rest = server - a["hs_server"] - json - a["webhook"] - keygen - sign - pem
    printf "exchange phases (callgrind: %d exchanges after 1 warm-up, less a run of 1; instructions per exchange;\n", count
    printf "a new TLS connection per exchange, key pool empty, concierge with one worker thread, log level warn)\n"
    printf "  %-66s %8s %7s\n", "phase (functions counted, inclusive)", "M/exch", "share"
    row("TLS handshake, server (mbedtls_ssl_handshake from TlsServer::serve)", a["hs_server"])
    row("JSON: TokenCredentialRequest parse + answer (in Concierge::create)", json)
    row("webhook call (WebhookAuthenticator::authenticate, kept-alive TLS)", a["webhook"])
    row("key generation (ClientKey::generate less its PEM)", keygen)
    row("signature (Signer::issue less its PEM: DER, SHA-256, ECDSA)", sign)
    row("PEM/PKCS#8 (PrivateKey::to_pem, certificate pem_encode)", pem)
    row("rest (HTTP, routing, TLS records, sockets, threads, malloc)", rest)
    row("total, concierge side (all counted instructions less the client)", server)
    printf "  within them: ECDSA alone (PrivateKey::sign) %.2f M; PrivateKey::generate_ec %.2f M;\n", m(a["ecdsa"]), m(a["generate_ec"])
    printf "    TokenReview JSON inside the webhook call %.3f M\n", m(wjson)
    printf "  client side, not in the total: exchange_token %.2f M, of which its TLS handshake %.2f M\n", m(a["client"]), m(a["hs_client"])
    if (a["hs_client_n"] != 1 || a["webhook_n"] != 1)
      printf "  WARNING: %.2f client handshakes and %.2f webhook calls per exchange (expected 1 and 1): the webhook connection was not kept alive\n", a["hs_client_n"], a["webhook_n"]
    printf "  over one kept-alive connection: concierge side %.2f M per exchange (server handshake %.2f M), client %.2f M\n",
      m(k["total"] - k["client"]), m(k["hs_server"]), m(k["client"])
    if (have_floor) {
      sum = fk + fs + a["hs_server"]
      printf "\nmbedTLS primitives measured alone: key generation %.2f M (bench-crypto-floor keygen) + certificate %.2f M\n", m(fk), m(fs)
      printf "  (bench-crypto-floor sign: Signer::issue) + one server handshake %.2f M (mbedtls_ssl_handshake, above) = %.2f M\n", m(a["hs_server"]), m(sum)
      printf "  exchange total / sum of primitives: %.2f (goal <= 1.25)\n", server / sum
    }
    if (have_openssl) {
      printf "\n%s on this machine (callgrind instructions):\n", over
      printf "  %-22s %14s %14s %8s %24s\n", "", "pinniped", "OpenSSL warm", "ratio", "OpenSSL CLI less base"
      printf "  %-22s %12.3f M %12.3f M %7.1fx %22.3f M\n", "P-256 key generation", m(a["generate_ec"]), m(owg), a["generate_ec"] / owg, m(og - ogb)
      printf "  %-22s %12.3f M %12.3f M %7.1fx %22.3f M\n", "ECDSA P-256 signature", m(a["ecdsa"]), m(ows), a["ecdsa"] / ows, m(os - osb)
      printf "  pinniped: PrivateKey::generate_ec and PrivateKey::sign inside the exchange (one prepared group per thread).\n"
      printf "  OpenSSL warm: EVP_PKEY_keygen (1 key) and EVP_PKEY_sign (per call of its loop) in `openssl speed ecdsap256`.\n"
      printf "  CLI less base: `openssl ecparam -genkey` less `openssl ecparam -noout`, `openssl dgst -sign` less\n"
      printf "  `openssl dgst`: one process each, so they include seeding the random generator and loading the key.\n"
      if (ospeed > 0 && have_floor && fs_us > 0)
        printf "  time (native, noisy): OpenSSL %.0f signatures/s = %.1f us each; pinniped certificate (Signer::issue) %d us, %.1fx\n",
          ospeed, 1e6 / ospeed, fs_us, fs_us / (1e6 / ospeed)
    }
    printf "\nGo anchor (upstream Pinniped, from issue 13; a reference, not measured here): 146 us per certificate on one core, Go 1.19\n"
    if (have_floor && fk_us > 0)
      printf "  pinniped here, timed natively (noisy): key %d us + certificate %d us = %d us\n", fk_us, fs_us, fk_us + fs_us
  }' "$work/new.per" "$work/kept.per"
echo "  (tools/phases.sh took $(($(date +%s) - started)) s)"
