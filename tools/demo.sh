#!/bin/sh
# `make demo`: a cluster signer, a webhook IDP and the concierge on this
# machine's loopback; a user exchanges an IDP token for a 5-minute client
# certificate through the C++ client library, and a wrong token is refused.
set -eu
BUILD=${1:-build}
work=$(mktemp -d /tmp/pinniped-demo-XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "demo: step failed: $1 (log: $2)" >&2; cat "$2" >&2 || true; exit 1; }

step "Minting a k3s-style cluster signer (ECDSA P-256) in $work"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/client-ca.key" 2>/dev/null
openssl req -x509 -new -key "$work/client-ca.key" -subj "/CN=k3s-client-ca@$(date +%s)" -days 30 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature \
  -out "$work/client-ca.crt" 2>/dev/null
openssl x509 -in "$work/client-ca.crt" -noout -subject

step "Starting a TokenReview webhook IDP (token 'demo-token' = user alice, groups developers,admins)"
"$BUILD/demo-idp" --dir "$work" --user "demo-token=alice:developers,admins" >"$work/idp.log" 2>&1 &
pids="$pids $!"
for i in $(seq 100); do [ -s "$work/idp-url" ] && break; sleep 0.05; done
[ -s "$work/idp-url" ] || fail "webhook IDP" "$work/idp.log"
echo "IDP at $(cat "$work/idp-url")"

cat >"$work/authenticators.yaml" <<YAML
apiVersion: authentication.concierge.pinniped.dev/v1alpha1
kind: WebhookAuthenticator
metadata:
  name: demo-idp
spec:
  endpoint: $(cat "$work/idp-url")
  tls:
    certificateAuthorityData: $(base64 -w0 "$work/idp-ca.pem")
YAML

step "Starting the concierge (pinniped concierge)"
"$BUILD/pinniped" concierge --listen 127.0.0.1:0 --port-file "$work/port" --serving-ca-out "$work/serving-ca.pem" \
  --signer-cert "$work/client-ca.crt" --signer-key "$work/client-ca.key" \
  --authenticators "$work/authenticators.yaml" >"$work/concierge.log" 2>&1 &
pids="$pids $!"
for i in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || fail "concierge" "$work/concierge.log"
endpoint="https://127.0.0.1:$(cat "$work/port")"
echo "concierge at $endpoint"
sed 's/^/  log: /' "$work/concierge.log"

step "Exchanging the IDP token for a cluster credential (README example program)"
DEMO_TOKEN=demo-token "$BUILD/readme-example" "$endpoint" "$work/serving-ca.pem" demo-idp DEMO_TOKEN >"$work/cred.pem" \
  || fail "exchange" "$work/concierge.log"
head -n1 "$work/cred.pem" | sed 's/^/expires: /'
tail -n +2 "$work/cred.pem" >"$work/cert.pem"
openssl x509 -in "$work/cert.pem" -noout -subject -issuer -dates -ext extendedKeyUsage 2>/dev/null
openssl verify -CAfile "$work/client-ca.crt" "$work/cert.pem"

step "A wrong token is refused"
if DEMO_TOKEN=wrong-token "$BUILD/readme-example" "$endpoint" "$work/serving-ca.pem" demo-idp DEMO_TOKEN; then
  echo "demo: a wrong token was accepted" >&2
  exit 1
fi

step "Concierge log of the exchanges (tokens never logged)"
grep '"exchange"' "$work/concierge.log" | sed 's/^/  /'
printf '\n\033[1mDemo finished: alice got a 5-minute certificate that kube-apiserver (with --client-ca-file=client-ca.crt) would accept.\033[0m\n'
