#!/bin/sh
# `make demo`: the main job on an embedded default. Brings up a real control
# plane on this machine (etcd + kube-apiserver in a private network
# namespace, tests/e2e/cluster.sh), registers the concierge's API with the
# manifests, runs the concierge and a TokenReview webhook IDP, and shows a
# user getting a 5-minute certificate and using it with kubectl.
set -eu
BUILD=${1:-build}
DIR=${DEMO_DIR:-/tmp/pinniped-demo}
if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (it creates a network namespace); run: sudo make demo" >&2
  exit 1
fi
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "demo: step failed: $1${2:+ (log: $2)}" >&2; [ -n "${2:-}" ] && tail -n 20 "$2" >&2; exit 1; }
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  sleep 1
  tests/e2e/cluster.sh down "$DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

step "Starting a local control plane: etcd + kube-apiserver in network namespace pinniped-e2e"
echo "(the first run builds kube-apiserver from Debian's source package: several minutes)"
tests/e2e/cluster.sh down "$DIR" >/dev/null 2>&1 || true
tests/e2e/cluster.sh up "$DIR" || fail "cluster" "$DIR/logs/kube-apiserver.log"
. "$DIR/env"
ns() { ip netns exec "$NETNS" "$@"; }
k() { ns kubectl --kubeconfig "$KUBECONFIG" "$@" 2>>"$DIR/logs/demo-kubectl.log"; }

step "Applying manifests/concierge (CRDs, RBAC, APIServices, ...)"
for i in 1 2 3 4 5; do k apply -k manifests/concierge >"$DIR/logs/apply.log" && break; sleep 2; done
[ "$i" -lt 5 ] || k apply -k manifests/concierge >"$DIR/logs/apply.log" || fail "kubectl apply" "$DIR/logs/apply.log"
sed 's/^/  /' "$DIR/logs/apply.log"
# No kubelet here: the concierge runs as a process at the namespace address.
cat >"$DIR/endpoints.yaml" <<YAML
apiVersion: v1
kind: Endpoints
metadata: {name: pinniped-concierge-api, namespace: pinniped-concierge}
subsets:
- addresses: [{ip: $ADDR}]
  ports: [{name: https, port: 10250}]
YAML
k apply -f "$DIR/endpoints.yaml" >/dev/null

step "Starting the concierge with its ServiceAccount's token (the manifests' RBAC applies)"
token=$(k create token pinniped-concierge -n pinniped-concierge --duration 1h)
cat >"$DIR/concierge.kubeconfig" <<YAML
apiVersion: v1
kind: Config
current-context: sa
clusters: [{name: demo, cluster: {server: "$SERVER", certificate-authority: "$SERVING_CA"}}]
users: [{name: sa, user: {token: "$token"}}]
contexts: [{name: sa, context: {cluster: demo, user: sa}}]
YAML
ns "$BUILD/pinniped" concierge --listen "$ADDR:10250" --kubeconfig "$DIR/concierge.kubeconfig" \
  --signer-root "$SIGNER_ROOT" --reload-interval 2s >"$DIR/logs/concierge.log" 2>&1 &
pids="$pids $!"
printf 'waiting for the APIService to become Available'
for i in $(seq 60); do
  s=$(k get apiservice v1alpha1.login.concierge.pinniped.dev -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' || true)
  [ "$s" = True ] && break
  printf '.'; sleep 1
done
echo
[ "$s" = True ] || fail "APIService never became Available" "$DIR/logs/concierge.log"
# The aggregator routes a group a moment after the APIService is Available.
for i in $(seq 30); do k get --raw /apis/login.concierge.pinniped.dev/v1alpha1 >/dev/null 2>&1 && break; sleep 1; done
k get apiservice v1alpha1.login.concierge.pinniped.dev

step "Starting a TokenReview webhook IDP (token 'demo-token' = alice, groups developers, all-staff)"
rm -f "$DIR/idp-url" "$DIR/idp-ca.pem"
ns "$BUILD/demo-idp" --dir "$DIR" --user "demo-token=alice:developers,all-staff" >"$DIR/logs/idp.log" 2>&1 &
pids="$pids $!"
for i in $(seq 100); do [ -s "$DIR/idp-url" ] && break; sleep 0.05; done
[ -s "$DIR/idp-url" ] || fail "webhook IDP" "$DIR/logs/idp.log"
cat >"$DIR/authenticator.yaml" <<YAML
apiVersion: authentication.concierge.pinniped.dev/v1alpha1
kind: WebhookAuthenticator
metadata: {name: demo-idp}
spec:
  endpoint: $(cat "$DIR/idp-url")
  tls: {certificateAuthorityData: $(base64 -w0 "$DIR/idp-ca.pem")}
YAML
k apply -f "$DIR/authenticator.yaml"
for i in $(seq 30); do
  [ "$(k get webhookauthenticator demo-idp -o jsonpath='{.status.phase}')" = Ready ] && break
  sleep 1
done
k get webhookauthenticator demo-idp

step "alice exchanges her IDP token through kube-apiserver (anonymously) for a cluster credential"
DEMO_TOKEN=demo-token ns "$BUILD/readme-example" "$SERVER" "$SERVING_CA" demo-idp DEMO_TOKEN >"$DIR/cred.pem" \
  || fail "exchange" "$DIR/logs/concierge.log"
head -n1 "$DIR/cred.pem" | sed 's/^/expires: /'
# The answer holds the certificate and its private key (PEM).
awk '/BEGIN CERTIFICATE/,/END CERTIFICATE/' "$DIR/cred.pem" >"$DIR/alice.crt"
awk '/BEGIN PRIVATE KEY/,/END PRIVATE KEY/' "$DIR/cred.pem" >"$DIR/alice.key"
chmod 600 "$DIR/alice.key"
openssl x509 -in "$DIR/alice.crt" -noout -subject -issuer -dates 2>/dev/null | sed 's/^/  /'

step "alice uses it with kubectl: authenticated as alice, not yet allowed"
as_alice() { ns kubectl --kubeconfig /dev/null --server "$SERVER" --certificate-authority "$SERVING_CA" --client-certificate "$DIR/alice.crt" --client-key "$DIR/alice.key" "$@"; }
as_alice get namespaces 2>&1 | sed 's/^/  /' || true

step "The admin lets the group 'developers' read namespaces; alice tries again"
k create clusterrole demo-namespace-reader --verb=get,list --resource=namespaces >/dev/null
k create clusterrolebinding demo-developers --clusterrole=demo-namespace-reader --group=developers >/dev/null
sleep 1
as_alice get namespaces >"$DIR/alice-ns.txt" || fail "alice cannot list namespaces" "$DIR/alice-ns.txt"
sed 's/^/  /' "$DIR/alice-ns.txt"

step "A wrong token is refused"
if DEMO_TOKEN=wrong-token ns "$BUILD/readme-example" "$SERVER" "$SERVING_CA" demo-idp DEMO_TOKEN; then
  echo "demo: a wrong token was accepted" >&2
  exit 1
fi

step "The concierge's log of the exchanges (tokens are never logged)"
grep '"exchange"' "$DIR/logs/concierge.log" | sed 's/^/  /'
printf '\n\033[1mDemo finished: alice logged in with her IDP token and kube-apiserver recognised her certificate.\033[0m\n'
echo "(logs kept in $DIR/logs)"
