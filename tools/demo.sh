#!/bin/sh
# `make demo`: the main job on an embedded default. Brings up a real control
# plane on this machine (etcd + kube-apiserver in a private network
# namespace, tests/e2e/cluster.sh) run as DEMO_PROFILE runs it (k3s, the
# default: anonymous requests refused; or kubeadm), registers the concierge's
# API with the manifests, runs the concierge and a TokenReview webhook IDP,
# and shows a user getting a 5-minute certificate and using it with kubectl,
# by hand and through `pinniped get kubeconfig`'s exec plugin.
set -eu
BUILD=${1:-build}
DIR=${DEMO_DIR:-/tmp/pinniped-demo}
PROFILE=${DEMO_PROFILE:-k3s}
DIRECT_PORT=10444
if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (it creates a network namespace); run: sudo make demo" >&2
  exit 1
fi
case $PROFILE in
  k3s | kubeadm) ;;
  *) echo "demo: DEMO_PROFILE must be k3s or kubeadm, not \"$PROFILE\"" >&2; exit 2 ;;
esac
command -v jq >/dev/null || { echo "demo: needs jq (apt-get install jq)" >&2; exit 1; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "demo: step failed: $1${2:+ (log: $2)}" >&2; [ -n "${2:-}" ] && tail -n 20 "$2" >&2; exit 1; }
pids=""
ours=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  sleep 1
  # Only our own cluster: down stops everything in the namespace.
  [ -z "$ours" ] || tests/e2e/cluster.sh down "$DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

step "Starting a local control plane ($PROFILE): etcd + kube-apiserver in network namespace pinniped-e2e"
echo "(the first run builds kube-apiserver from Debian's source package: several minutes)"
if owner=$(tests/e2e/cluster.sh owner); then
  [ "$(realpath -m "$owner")" = "$(realpath -m "$DIR")" ] ||
    fail "another e2e cluster is up ($owner); stop it first: tests/e2e/cluster.sh down $owner"
  tests/e2e/cluster.sh down "$DIR" >/dev/null 2>&1 || true
fi
ours=1
tests/e2e/cluster.sh up "$DIR" --profile "$PROFILE" || fail "cluster" "$DIR/logs/kube-apiserver.log"
# shellcheck source=/dev/null # written by cluster.sh up
. "$DIR/env"
ns() { ip netns exec "$NETNS" "$@"; }
k() { ns kubectl --kubeconfig "$KUBECONFIG" "$@" 2>>"$DIR/logs/demo-kubectl.log"; }
if [ "$ANONYMOUS_AUTH" = false ]; then
  echo "kube-apiserver runs with --anonymous-auth=false, as k3s does: an anonymous request gets" \
    "HTTP $(ns curl -sk -o /dev/null -w '%{http_code}' "$SERVER/api")"
fi

step "Applying manifests/concierge (CRDs, RBAC, APIServices, Services, ...)"
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

step "Standing in for k3s's ServiceLB: Service pinniped-concierge-direct gets LoadBalancer address $ADDR"
# ServiceLB (on kubeadm clusters MetalLB or a cloud's) would write the
# Service's status; nothing here does, so the admin PUTs it to the status
# subresource (kubectl 1.20 has no `patch --subresource`).
svc=/api/v1/namespaces/pinniped-concierge/services/pinniped-concierge-direct
k get --raw "$svc" | jq --arg ip "$ADDR" '.status.loadBalancer.ingress = [{ip: $ip}]' >"$DIR/direct-service.json" ||
  fail "reading Service pinniped-concierge-direct" "$DIR/logs/demo-kubectl.log"
k replace --raw "$svc/status" -f "$DIR/direct-service.json" >/dev/null ||
  fail "writing the direct Service's status" "$DIR/logs/demo-kubectl.log"
k get service -n pinniped-concierge pinniped-concierge-direct | sed 's/^/  /'

step "Starting the concierge with its ServiceAccount's token (the manifests' RBAC applies)"
echo "aggregated API on $ADDR:10250 (behind kube-apiserver), direct frontend on $ADDR:$DIRECT_PORT"
# A TokenRequest (what `kubectl create token` sends; kubectl 1.20, Debian 12's,
# has no such command).
echo '{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}' \
  >"$DIR/token-request.json"
token=$(k create --raw /api/v1/namespaces/pinniped-concierge/serviceaccounts/pinniped-concierge/token \
  -f "$DIR/token-request.json" | jq -r .status.token)
case $token in '' | null) fail "no token for ServiceAccount pinniped-concierge" "$DIR/logs/demo-kubectl.log" ;; esac
cat >"$DIR/concierge.kubeconfig" <<YAML
apiVersion: v1
kind: Config
current-context: sa
clusters: [{name: demo, cluster: {server: "$SERVER", certificate-authority: "$SERVING_CA"}}]
users: [{name: sa, user: {token: "$token"}}]
contexts: [{name: sa, context: {cluster: demo, user: sa}}]
YAML
ns "$BUILD/pinniped" concierge --listen "$ADDR:10250" --direct-listen "$ADDR:$DIRECT_PORT" \
  --kubeconfig "$DIR/concierge.kubeconfig" --signer-root "$SIGNER_ROOT" --reload-interval 2s \
  >"$DIR/logs/concierge.log" 2>&1 &
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

step "The CredentialIssuer: where clients send their exchanges"
# k3s: kube-apiserver lets no anonymous exchange through, so the concierge
# publishes its direct frontend at the Service's LoadBalancer address;
# kubeadm: kube-apiserver itself (kube-public/cluster-info).
if [ "$ANONYMOUS_AUTH" = false ]; then want="https://$ADDR:$DIRECT_PORT"; else want=$API_SERVER_ADDR_URL; fi
ci() { k get credentialissuer pinniped-concierge-config -o json; }
printf 'waiting for the concierge to publish %s' "$want"
for i in $(seq 60); do
  frontend=$(ci | jq -r '.status.strategies[]? | select(.status == "Success") | .frontend.tokenCredentialRequestInfo.server' || true)
  [ "$frontend" = "$want" ] && break
  printf '.'; sleep 1
done
echo
[ "$frontend" = "$want" ] || fail "the CredentialIssuer does not publish $want (it says \"$frontend\")" "$DIR/logs/concierge.log"
ci | jq '.status.strategies[] | .frontend.tokenCredentialRequestInfo.certificateAuthorityData |= .[:24] + "..."'
ci | jq -r '.status.strategies[0].frontend.tokenCredentialRequestInfo.certificateAuthorityData' | base64 -d >"$DIR/frontend-ca.pem"

if [ "$ANONYMOUS_AUTH" = false ]; then
  step "Through kube-apiserver the exchange is refused: it is anonymous, and kube-apiserver refuses anonymous requests"
  if DEMO_TOKEN=demo-token ns "$BUILD/readme-example" "$SERVER" "$SERVING_CA" demo-idp DEMO_TOKEN >/dev/null 2>"$DIR/refused.txt"; then
    fail "kube-apiserver let an anonymous exchange through on the $PROFILE profile"
  fi
  sed 's/^/  /' "$DIR/refused.txt"
  how="the concierge's direct frontend, $frontend"
else
  how="kube-apiserver (anonymously), $frontend"
fi

step "alice exchanges her IDP token for a cluster credential through $how"
DEMO_TOKEN=demo-token ns "$BUILD/readme-example" "$frontend" "$DIR/frontend-ca.pem" demo-idp DEMO_TOKEN >"$DIR/cred.pem" ||
  fail "exchange" "$DIR/logs/concierge.log"
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

step "The admin writes alice a kubeconfig: pinniped get kubeconfig --static-token-env DEMO_TOKEN"
echo "(no --concierge-endpoint: the CredentialIssuer says where logins go)"
ns "$BUILD/pinniped" get kubeconfig --kubeconfig "$KUBECONFIG" --static-token-env DEMO_TOKEN \
  --pinniped-cli-path "$(realpath "$BUILD/pinniped")" -o "$DIR/alice.kubeconfig" 2>"$DIR/logs/get-kubeconfig.log" || fail "pinniped get kubeconfig" "$DIR/logs/get-kubeconfig.log"
sed 's/^/  /' "$DIR/logs/get-kubeconfig.log"
grep -E -e '--concierge-(endpoint|authenticator-name)=|command:|server:' "$DIR/alice.kubeconfig" | sed 's/^ */  /'

step "alice runs plain kubectl with it: the exec plugin logs her in with her token"
plugin_kubectl() {
  DEMO_TOKEN=$1 XDG_CONFIG_HOME="$DIR/xdg-alice" ns kubectl --kubeconfig "$DIR/alice.kubeconfig" get namespaces
}
plugin_kubectl demo-token >"$DIR/alice-plugin-ns.txt" 2>&1 || fail "kubectl through the exec plugin" "$DIR/alice-plugin-ns.txt"
sed 's/^/  /' "$DIR/alice-plugin-ns.txt"

step "A wrong token is refused"
if DEMO_TOKEN=wrong-token ns "$BUILD/readme-example" "$frontend" "$DIR/frontend-ca.pem" demo-idp DEMO_TOKEN; then
  echo "demo: a wrong token was accepted" >&2
  exit 1
fi
rm -rf "$DIR/xdg-alice"
if plugin_kubectl wrong-token >"$DIR/alice-wrong.txt" 2>&1; then
  echo "demo: kubectl with a wrong token got through" >&2
  exit 1
fi
sed 's/^/  kubectl: /' "$DIR/alice-wrong.txt" | grep -m1 -F 'pinniped:' || sed -n '1p' "$DIR/alice-wrong.txt"

step "The concierge's log of the exchanges (tokens are never logged)"
grep '"exchange"' "$DIR/logs/concierge.log" | sed 's/^/  /'
printf '\n\033[1mDemo finished (%s): alice logged in with her IDP token and kube-apiserver recognised her certificate.\033[0m\n' "$PROFILE"
echo "(logs kept in $DIR/logs)"
