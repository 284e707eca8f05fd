#!/bin/bash
# A real Kubernetes control plane for the e2e tests: etcd and kube-apiserver
# in a private network namespace (no Docker, no kubelet; the
# kube-controller-manager built beside kube-apiserver is named in DIR/env and
# started by the e2e's CSR cases), its PKI minted by openssl the way one
# distribution makes it.
#
#   cluster.sh up DIR [--profile k3s|kubeadm] [--client-ca-chain]
#                                start; writes DIR/env and DIR/admin.kubeconfig
#   cluster.sh down DIR [--purge] stop by recorded pids, delete the namespace
#   cluster.sh owner             print the DIR of the cluster that is up (exit 1:
#                                none); `down` stops all in the namespace
#
# Profiles (default: $PROFILE, else k3s) are two real control planes:
#   k3s      as k3s's pkg/daemons/control runs kube-apiserver: anonymous auth
#            off, EC P-256 CAs named k3s-*-ca@<unix time>, files in
#            DIR/root/var/lib/rancher/k3s/server/tls/, admin kubeconfig shaped
#            like k3s.yaml (server https://127.0.0.1:6443), no
#            kube-public/cluster-info. --client-ca-chain: client-ca.crt is an
#            intermediate CA then its root, client-ca.key the intermediate's.
#   kubeadm  anonymous auth on, one RSA 2048 CA "CN=kubernetes", files in
#            DIR/root/etc/kubernetes/pki/, admin kubernetes-admin at
#            https://10.234.0.1:6443, kube-public/cluster-info published.
#
# Runs as root. kube-apiserver binds 0.0.0.0 inside the namespace, where only
# lo exists (127.0.0.1 and ADDR); no traffic leaves it. Layout of DIR: root/
# (the profile's files where the distribution keeps them: --signer-root
# DIR/root finds the signer), pki/ (openssl's config and what the
# distribution keeps nowhere on disk), etcd/ (data), logs/, pids/, env,
# admin.kubeconfig.
set -Eeuo pipefail

NETNS=pinniped-e2e
ADDR=10.234.0.1
PORT=6443
SERVICE_CIDR=10.96.0.0/24
SERVICE_IP=10.96.0.1
SA_ISSUER=https://kubernetes.default.svc.cluster.local
ETCD_CLIENT=127.0.0.1:2379
ETCD_PEER=127.0.0.1:2380
READY_TIMEOUT=${READY_TIMEOUT:-60}
STOP_TIMEOUT=${STOP_TIMEOUT:-10}
HERE=$(cd "$(dirname "$0")" && pwd)

STEP=start
LOG=""
say() { echo "cluster: $*"; }
step() {
  STEP=$1
  LOG=${2:-}
  say "$STEP${LOG:+ (log: $LOG)}"
}
fail() {
  echo "cluster: FAILED in step \"$STEP\": $*" >&2
  if [ -n "$LOG" ] && [ -s "$LOG" ]; then
    echo "cluster: log $LOG, last lines:" >&2
    tail -n 15 "$LOG" | sed 's/^/  | /' >&2
  fi
  [ -n "${DIR:-}" ] && echo "cluster: inspect $DIR; clean up with: $0 down $DIR" >&2
  exit 1
}
usage() {
  echo "usage: $0 up DIR [--profile k3s|kubeadm] [--client-ca-chain] | down DIR [--purge] | owner" >&2
  exit 2
}

in_ns() { ip netns exec "$NETNS" "$@"; }
netns_exists() { [ -e "/run/netns/$NETNS" ]; }

# Starts a daemon in the namespace, detached from our session; its pid goes
# to pids/NAME.pid (written by the process itself, so it is the daemon's:
# setsid, sh's exec and `ip netns exec` keep the pid).
start_daemon() {
  local name=$1
  shift
  # shellcheck disable=SC2016 # $$ and $@ are the inner shell's
  setsid sh -c 'echo $$ >"$0"; exec "$@"' "$DIR/pids/$name.pid" \
    ip netns exec "$NETNS" "$@" </dev/null >"$DIR/logs/$name.log" 2>&1 &
  for _ in $(seq 50); do
    [ -s "$DIR/pids/$name.pid" ] && return 0
    sleep 0.1
  done
  fail "no pid file for $name"
}

alive() {
  local pid
  pid=$(cat "$DIR/pids/$1.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# wait_until SECONDS DAEMON COMMAND...: polls COMMAND every 0.5 s; gives up
# early when DAEMON has exited.
wait_until() {
  local limit=$1 daemon=$2
  shift 2
  local deadline=$((SECONDS + limit))
  while [ $SECONDS -lt $deadline ]; do
    "$@" >/dev/null 2>&1 && return 0
    alive "$daemon" || fail "$daemon exited"
    sleep 0.5
  done
  fail "not ready after ${limit}s"
}

# ---------------------------------------------------------------- profiles
# The files of PROFILE, where the distribution keeps them, and its knobs.
profile_paths() {
  case $PROFILE in
    k3s)
      CA_DIR=$DIR/root/var/lib/rancher/k3s/server/tls
      KEY_TYPE=ec
      CHAINED=1 # k3s writes each leaf followed by its CA's file (EncodeCertsPEM)
      CLIENT_CA=$CA_DIR/client-ca.crt
      SIGNER_KEY=$CA_DIR/client-ca.key
      SERVING_CA=$CA_DIR/server-ca.crt
      APISERVER_CERT=$CA_DIR/serving-kube-apiserver.crt
      APISERVER_KEY=$CA_DIR/serving-kube-apiserver.key
      FRONT_PROXY_CA=$CA_DIR/request-header-ca.crt
      FRONT_PROXY_CLIENT_CERT=$CA_DIR/client-auth-proxy.crt
      FRONT_PROXY_CLIENT_KEY=$CA_DIR/client-auth-proxy.key
      ADMIN_CERT=$CA_DIR/client-admin.crt
      ADMIN_KEY=$CA_DIR/client-admin.key
      # k3s passes its one service.key to both flags; the public half is ours.
      SA_KEY=$CA_DIR/service.key
      SA_PUB=$PKI/service.pub
      SA_VERIFY_KEY=$SA_KEY
      ALLOWED_NAMES=system:auth-proxy
      ADMIN_USER=system:admin
      ANONYMOUS_AUTH=false
      API_AUDIENCES=$SA_ISSUER,k3s
      SERVER=https://127.0.0.1:$PORT
      KC_CLUSTER=default KC_USER=default KC_CONTEXT=default
      KC_COPY=$DIR/root/etc/rancher/k3s/k3s.yaml
      ;;
    kubeadm)
      CA_DIR=$DIR/root/etc/kubernetes/pki
      KEY_TYPE=rsa
      CHAINED=0
      CLIENT_CA=$CA_DIR/ca.crt
      SIGNER_KEY=$CA_DIR/ca.key
      SERVING_CA=$CA_DIR/ca.crt
      APISERVER_CERT=$CA_DIR/apiserver.crt
      APISERVER_KEY=$CA_DIR/apiserver.key
      FRONT_PROXY_CA=$CA_DIR/front-proxy-ca.crt
      FRONT_PROXY_CLIENT_CERT=$CA_DIR/front-proxy-client.crt
      FRONT_PROXY_CLIENT_KEY=$CA_DIR/front-proxy-client.key
      # kubeadm keeps the admin's certificate only inside admin.conf.
      ADMIN_CERT=$PKI/admin.crt
      ADMIN_KEY=$PKI/admin.key
      SA_KEY=$CA_DIR/sa.key
      SA_PUB=$CA_DIR/sa.pub
      SA_VERIFY_KEY=$SA_PUB
      ALLOWED_NAMES=front-proxy-client
      ADMIN_USER=kubernetes-admin
      ANONYMOUS_AUTH=true
      API_AUDIENCES=$SA_ISSUER
      SERVER=https://$ADDR:$PORT
      KC_CLUSTER=kubernetes KC_USER=kubernetes-admin KC_CONTEXT=kubernetes-admin@kubernetes
      KC_COPY=$DIR/root/etc/kubernetes/admin.conf
      ;;
  esac
  SIGNER_CERT=$CLIENT_CA
  # What kube-controller-manager signs kube-apiserver-client CSRs with: one
  # certificate (it refuses a bundle); k3s passes client-ca.nochain.crt.
  if [ "$PROFILE" = k3s ]; then
    CSR_SIGNING_CERT=$CA_DIR/client-ca.nochain.crt
  else
    CSR_SIGNING_CERT=$CLIENT_CA
  fi
  API_SERVER_ADDR_URL=https://$ADDR:$PORT
}

# ---------------------------------------------------------------- PKI
# Certificates as Go tools make them: each name a PrintableString where its
# characters allow, else a UTF8String ("k3s-client-ca@1700000000"; openssl's
# default would make that a T61String); k3s's EC P-256 keys in SEC1 form,
# kubeadm's RSA 2048 keys in PKCS#1 form.
write_openssl_config() {
  local sans="IP:$ADDR,IP:$SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default"
  sans="$sans,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  if [ "$PROFILE" = k3s ]; then sans="$sans,DNS:localhost"; fi
  cat >"$PKI/openssl.cnf" <<CNF
[req]
distinguished_name = dn
string_mask = \$ENV::PKI_STRING_MASK
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign
subjectKeyIdentifier = hash
[subca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
subjectAltName = $sans
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
CNF
}

# new_key FILE [rsa|ec]: a private key, by default of the profile's type.
new_key() {
  (
    umask 077
    if [ "${2:-$KEY_TYPE}" = rsa ]; then
      openssl genrsa -traditional -out "$1" 2048
    else
      openssl ecparam -name prime256v1 -genkey -noout -out "$1"
    fi
  )
}

# mint OUT SUBJECT EXTENSIONS [CA]: OUT.key and OUT.crt (OUT and CA are
# paths without the suffix), self-signed when CA is empty. With CHAINED=1 the
# certificate is followed by all of CA.crt, as k3s writes its files.
mint() {
  local out=$1 subj=$2 ext=$3 ca=${4:-}
  if [ -z "$(printf %s "$subj" | tr -d "A-Za-z0-9 '()+,./:=?-")" ]; then
    export PKI_STRING_MASK=default
  else
    export PKI_STRING_MASK=utf8only
  fi
  new_key "$out.key"
  if [ -z "$ca" ]; then
    openssl req -batch -new -x509 -config "$PKI/openssl.cnf" -extensions "$ext" \
      -key "$out.key" -subj "$subj" -days 3650 -sha256 -out "$out.crt"
  else
    openssl req -batch -new -config "$PKI/openssl.cnf" -key "$out.key" -subj "$subj" -out "$out.csr"
    openssl x509 -req -in "$out.csr" -CA "$ca.crt" -CAkey "$ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
      -extfile "$PKI/openssl.cnf" -extensions "$ext" -out "$out.crt"
    rm -f "$out.csr"
    if [ "$CHAINED" = 1 ]; then cat "$ca.crt" >>"$out.crt"; fi
  fi
}

# The service-account key (RSA 2048 on both) and its public half.
mint_sa_key() {
  new_key "$SA_KEY" rsa
  openssl rsa -in "$SA_KEY" -pubout -out "$SA_PUB"
}

make_pki_k3s() {
  local ts t=$CA_DIR
  ts=$(date +%s)
  if [ "$CLIENT_CA_CHAIN" = 1 ]; then
    # As k3s's custom-CA script: a root, and an intermediate under it that
    # signs; client-ca.crt is the intermediate then the root.
    mint "$t/root-ca" "/CN=k3s-root-ca@$ts" ca
    mint "$t/client-ca" "/CN=k3s-intermediate-ca@$ts" subca "$t/root-ca"
  else
    mint "$t/client-ca" "/CN=k3s-client-ca@$ts" ca
  fi
  mint "$t/server-ca" "/CN=k3s-server-ca@$ts" ca
  mint "$t/request-header-ca" "/CN=k3s-request-header-ca@$ts" ca
  # What k3s's controller-manager signs with: the first certificate alone.
  openssl x509 -in "$t/client-ca.crt" -out "$t/client-ca.nochain.crt"
  openssl x509 -in "$t/server-ca.crt" -out "$t/server-ca.nochain.crt"
  mint "$t/serving-kube-apiserver" "/CN=kube-apiserver" server "$t/server-ca"
  mint "$t/client-auth-proxy" "/CN=$ALLOWED_NAMES" client "$t/request-header-ca"
  mint "$t/client-admin" "/O=system:masters/CN=$ADMIN_USER" client "$t/client-ca"
  mint_sa_key
}

make_pki_kubeadm() {
  local p=$CA_DIR
  mint "$p/ca" "/CN=kubernetes" ca
  mint "$p/apiserver" "/CN=kube-apiserver" server "$p/ca"
  mint "$p/front-proxy-ca" "/CN=front-proxy-ca" ca
  mint "$p/front-proxy-client" "/CN=$ALLOWED_NAMES" client "$p/front-proxy-ca"
  mint "$PKI/admin" "/O=system:masters/CN=$ADMIN_USER" client "$p/ca"
  mint_sa_key
}

make_pki() {
  mkdir -p "$CA_DIR"
  chmod 700 "$CA_DIR"
  write_openssl_config
  "make_pki_$PROFILE"
  # Each key is the private half of its certificate (the first of a chained
  # file), and each certificate chains to its CA.
  local crt key
  for crt in "$CA_DIR"/*.crt "$PKI"/*.crt; do
    key=${crt%.crt}.key
    [ -e "$key" ] || continue
    [ "$(openssl x509 -in "$crt" -noout -pubkey)" = "$(openssl pkey -in "$key" -pubout)" ] ||
      { echo "$key is not the key of $crt"; return 1; }
  done
  openssl verify -CAfile "$CLIENT_CA" "$ADMIN_CERT"
  openssl verify -CAfile "$SERVING_CA" "$APISERVER_CERT"
  openssl verify -CAfile "$FRONT_PROXY_CA" "$FRONT_PROXY_CLIENT_CERT"
}

b64() { base64 -w0 <"$1"; }

# The admin kubeconfig in the distribution's shape (k3s.yaml, kubeadm's
# admin.conf), certificates embedded; a copy where the distribution keeps it.
write_kubeconfig() {
  local kc=$DIR/admin.kubeconfig
  (
    umask 077
    cat >"$kc" <<YAML
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(b64 "$SERVING_CA")
    server: $SERVER
  name: $KC_CLUSTER
contexts:
- context:
    cluster: $KC_CLUSTER
    user: $KC_USER
  name: $KC_CONTEXT
current-context: $KC_CONTEXT
kind: Config
preferences: {}
users:
- name: $KC_USER
  user:
    client-certificate-data: $(b64 "$ADMIN_CERT")
    client-key-data: $(b64 "$ADMIN_KEY")
YAML
  )
  mkdir -p "$(dirname "$KC_COPY")"
  install -m 600 "$kc" "$KC_COPY"
}

# kube-public/cluster-info as kubeadm publishes it: where upstream Pinniped
# (and we) learn the API server's URL and CA for the CredentialIssuer. k3s
# publishes none.
write_cluster_info() {
  cat >"$DIR/cluster-info.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: cluster-info
  namespace: kube-public
data:
  kubeconfig: |
    apiVersion: v1
    kind: Config
    clusters:
    - name: ""
      cluster:
        server: $API_SERVER_ADDR_URL
        certificate-authority-data: $(b64 "$SERVING_CA")
    contexts: []
    users: []
YAML
  in_ns kubectl --kubeconfig "$DIR/admin.kubeconfig" apply -f "$DIR/cluster-info.yaml"
}

write_env() {
  cat >"$DIR/env" <<ENV
# Written by tests/e2e/cluster.sh up; source it. Run clients in the
# namespace: ip netns exec \$NETNS kubectl ...
PROFILE='$PROFILE'
ANONYMOUS_AUTH='$ANONYMOUS_AUTH'
DIR='$DIR'
NETNS='$NETNS'
ADDR='$ADDR'
PORT='$PORT'
SERVER='$SERVER'
API_SERVER_ADDR_URL='$API_SERVER_ADDR_URL'
KUBECONFIG='$DIR/admin.kubeconfig'
KUBE_APISERVER='$KUBE_APISERVER'
KUBE_APISERVER_VERSION='$KUBE_APISERVER_VERSION'
KUBE_CONTROLLER_MANAGER='$KUBE_CONTROLLER_MANAGER'
SERVICE_CIDR='$SERVICE_CIDR'
SA_ISSUER='$SA_ISSUER'
CLIENT_CA='$CLIENT_CA'
CLIENT_CA_CHAIN='$CLIENT_CA_CHAIN'
SIGNER_CERT='$SIGNER_CERT'
CSR_SIGNING_CERT='$CSR_SIGNING_CERT'
SIGNER_KEY='$SIGNER_KEY'
SIGNER_ROOT='$DIR/root'
SERVING_CA='$SERVING_CA'
FRONT_PROXY_CA='$FRONT_PROXY_CA'
FRONT_PROXY_CLIENT_CERT='$FRONT_PROXY_CLIENT_CERT'
FRONT_PROXY_CLIENT_KEY='$FRONT_PROXY_CLIENT_KEY'
ADMIN_USER='$ADMIN_USER'
ADMIN_CERT='$ADMIN_CERT'
ADMIN_KEY='$ADMIN_KEY'
SA_KEY='$SA_KEY'
SA_PUB='$SA_PUB'
ETCD='http://$ETCD_CLIENT'
LOGS='$DIR/logs'
PIDS='$DIR/pids'
export KUBECONFIG
ENV
}

# ---------------------------------------------------------------- up
# The DIR of the cluster in the namespace, as its etcd says (--data-dir
# DIR/etcd); "unknown" when none says; status 1 when there is no namespace.
# Callers check it before `down`, which stops whatever runs in the namespace.
owner() {
  netns_exists || return 1
  local pid d
  for pid in $(ip netns pids "$NETNS" 2>/dev/null); do
    d=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n '/^--data-dir$/{n;s#/etcd$##p}') || true
    if [ -n "$d" ]; then
      echo "$d"
      return 0
    fi
  done
  echo unknown
}

up() {
  [ "$(id -u)" = 0 ] || fail "must run as root (network namespaces)"
  if netns_exists; then
    local other
    other=$(owner)
    [ "$other" != unknown ] || other="DIR-it-was-started-with"
    echo "cluster: network namespace $NETNS exists: a cluster is up or half-made." >&2
    echo "cluster: run first: $0 down $other" >&2
    exit 1
  fi
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  PKI=$DIR/pki
  profile_paths
  # A fresh cluster each time: drop what an earlier run left (not DIR itself).
  rm -rf "$PKI" "$DIR/root" "$DIR/etcd" "$DIR/logs" "$DIR/pids" "$DIR/env" "$DIR/admin.kubeconfig" "$DIR/cluster-info.yaml"
  mkdir -p "$PKI" "$DIR/logs" "$DIR/pids"
  local chain=""
  if [ "$CLIENT_CA_CHAIN" = 1 ]; then chain=", client CA chain"; fi
  say "profile $PROFILE (anonymous auth $ANONYMOUS_AUTH$chain)"

  step "kube-apiserver binary (tests/e2e/kube-apiserver.sh; the first build takes minutes)"
  if [ -z "${KUBE_APISERVER:-}" ]; then
    KUBE_APISERVER=$("$HERE/kube-apiserver.sh") || fail "tests/e2e/kube-apiserver.sh failed"
  fi
  [ -x "$KUBE_APISERVER" ] || fail "not executable: $KUBE_APISERVER"
  KUBE_APISERVER_VERSION=$("$KUBE_APISERVER" --version 2>&1 | awk '{print $2}')
  say "  $KUBE_APISERVER ($KUBE_APISERVER_VERSION)"
  # Not started here: the e2e runs it (its CSR signing controller, with
  # k3s's signing flags) for the cases of the concierge's CSR strategy.
  step "kube-controller-manager binary (built with kube-apiserver on a fresh machine)"
  if [ -z "${KUBE_CONTROLLER_MANAGER:-}" ]; then
    KUBE_CONTROLLER_MANAGER=$("$HERE/kube-apiserver.sh" kube-controller-manager) ||
      fail "tests/e2e/kube-apiserver.sh kube-controller-manager failed"
  fi
  [ -x "$KUBE_CONTROLLER_MANAGER" ] || fail "not executable: $KUBE_CONTROLLER_MANAGER"
  say "  $KUBE_CONTROLLER_MANAGER"

  step "etcd binary"
  if ! command -v etcd >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o DPkg::Lock::Timeout=300 etcd-server >"$DIR/logs/apt.log" 2>&1 ||
      { LOG=$DIR/logs/apt.log; fail "apt-get install etcd-server failed"; }
  fi
  for tool in etcd openssl curl kubectl ip setsid base64; do
    command -v "$tool" >/dev/null || fail "missing tool: $tool"
  done

  step "PKI ($PROFILE) in $CA_DIR" "$DIR/logs/pki.log"
  make_pki >"$LOG" 2>&1 || fail "openssl failed"

  step "network namespace $NETNS with $ADDR/32 on lo"
  ip netns add "$NETNS" || fail "ip netns add $NETNS"
  in_ns ip link set lo up || fail "lo up"
  in_ns ip addr add "$ADDR/32" dev lo || fail "ip addr add $ADDR/32"

  step "etcd on $ETCD_CLIENT" "$DIR/logs/etcd.log"
  start_daemon etcd etcd --name pinniped-e2e --data-dir "$DIR/etcd" \
    --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
    --listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
    --initial-cluster "pinniped-e2e=http://$ETCD_PEER" --initial-cluster-state new
  wait_until 30 etcd in_ns curl -fsS --max-time 2 "http://$ETCD_CLIENT/health"

  # The flags of the profile's distribution (k3s: pkg/daemons/control/server.go).
  step "kube-apiserver on 0.0.0.0:$PORT, advertised as $API_SERVER_ADDR_URL" "$DIR/logs/kube-apiserver.log"
  start_daemon kube-apiserver "$KUBE_APISERVER" \
    --etcd-servers "http://$ETCD_CLIENT" \
    --bind-address 0.0.0.0 --advertise-address "$ADDR" --secure-port "$PORT" --insecure-port 0 \
    --tls-cert-file "$APISERVER_CERT" --tls-private-key-file "$APISERVER_KEY" \
    --client-ca-file "$CLIENT_CA" \
    --requestheader-client-ca-file "$FRONT_PROXY_CA" \
    --requestheader-allowed-names "$ALLOWED_NAMES" \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$FRONT_PROXY_CLIENT_CERT" \
    --proxy-client-key-file "$FRONT_PROXY_CLIENT_KEY" \
    --enable-aggregator-routing=true \
    --service-account-key-file "$SA_VERIFY_KEY" \
    --service-account-signing-key-file "$SA_KEY" \
    --service-account-issuer "$SA_ISSUER" \
    --api-audiences "$API_AUDIENCES" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --anonymous-auth="$ANONYMOUS_AUTH" \
    --allow-privileged=true \
    --profiling=false \
    --v 1
  wait_until "$READY_TIMEOUT" kube-apiserver \
    sh -c "ip netns exec '$NETNS' curl -fsS --max-time 3 --cacert '$SERVING_CA' \
      --cert '$ADMIN_CERT' --key '$ADMIN_KEY' '$API_SERVER_ADDR_URL/readyz' | grep -qx ok"

  step "admin kubeconfig $DIR/admin.kubeconfig ($ADMIN_USER, $SERVER)" "$DIR/logs/kubectl.log"
  write_kubeconfig >"$LOG" 2>&1 || fail "could not write the admin kubeconfig"
  in_ns kubectl --kubeconfig "$DIR/admin.kubeconfig" get --raw /readyz >>"$LOG" 2>&1 ||
    fail "kubectl with the admin kubeconfig failed"

  if [ "$PROFILE" = kubeadm ]; then
    step "kube-public/cluster-info" "$DIR/logs/kubectl.log"
    write_cluster_info >>"$LOG" 2>&1 || fail "could not create kube-public/cluster-info"
  fi

  write_env
  say "up: kube-apiserver $KUBE_APISERVER_VERSION ($PROFILE) at $SERVER in netns $NETNS"
  say "  source $DIR/env; ip netns exec \$NETNS kubectl get ns"
  say "  stop with: $0 down $DIR"
}

# ---------------------------------------------------------------- down
# Ours when it lives in our namespace or its command line names DIR: a pid
# file left from an old run must not kill a stranger that reused the pid.
ours() {
  local pid=$1 ns_ino
  [ -d "/proc/$pid" ] || return 1
  if netns_exists; then
    ns_ino=$(stat -L -c %i "/run/netns/$NETNS" 2>/dev/null) || ns_ino=""
    [ -n "$ns_ino" ] && [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$ns_ino" ] && return 0
  fi
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR"
}

# stop_all PID...: TERM, then KILL what is left after STOP_TIMEOUT seconds.
stop_all() {
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT)) left pid
  while :; do
    left=()
    for pid in "$@"; do
      kill -0 "$pid" 2>/dev/null && left+=("$pid")
    done
    [ ${#left[@]} -eq 0 ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      say "  KILL ${left[*]} (still running ${STOP_TIMEOUT}s after TERM)"
      kill -KILL "${left[@]}" 2>/dev/null || true
      sleep 0.5
      return 0
    fi
    sleep 0.2
  done
}

down() {
  [ "$(id -u)" = 0 ] || fail "must run as root (network namespaces)"
  [ -d "$DIR" ] && DIR=$(cd "$DIR" && pwd)
  local servers=() etcd=() seen=" " f pid name
  step "stop processes recorded in $DIR/pids"
  for f in "$DIR"/pids/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    pid=$(cat "$f" 2>/dev/null || true)
    case $pid in '' | *[!0-9]*)
      say "  $name: bad pid file, ignored"
      continue
      ;;
    esac
    if ours "$pid"; then
      say "  $name: $pid"
      seen="$seen$pid "
      if [ "$name" = etcd ]; then etcd+=("$pid"); else servers+=("$pid"); fi
    else
      say "  $name: $pid not running (or not ours)"
    fi
  done
  # Anything else still in our namespace (a test's server that recorded no pid).
  if netns_exists; then
    for pid in $(ip netns pids "$NETNS" 2>/dev/null); do
      case $seen in *" $pid "*) continue ;; esac
      say "  unrecorded in $NETNS: $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60))"
      servers+=("$pid")
    done
  fi
  # etcd last: kube-apiserver shuts down slowly when its storage is gone.
  stop_all "${servers[@]}"
  stop_all "${etcd[@]}"
  rm -f "$DIR"/pids/*.pid 2>/dev/null || true

  step "delete network namespace $NETNS"
  if netns_exists; then
    ip netns del "$NETNS" || fail "ip netns del $NETNS"
  else
    say "  not there"
  fi

  if [ "$PURGE" = 1 ]; then
    step "purge $DIR"
    # Only a directory this script made: never / or a stranger's folder.
    if [ -d "$DIR" ] && [ "$DIR" != / ] &&
      { [ -e "$DIR/env" ] || [ -d "$DIR/pki" ] || [ -d "$DIR/logs" ]; }; then
      rm -rf "$DIR"
    elif [ -d "$DIR" ]; then
      fail "$DIR does not look like a cluster.sh directory; not removed"
    fi
  else
    [ -d "$DIR" ] && say "logs kept in $DIR/logs (--purge removes $DIR)"
  fi
  say "down"
}

trap 'fail "command failed at line $LINENO: $BASH_COMMAND"' ERR
if [ $# = 1 ] && [ "$1" = owner ]; then
  if owner; then exit 0; else exit 1; fi
fi
[ $# -ge 2 ] || usage
CMD=$1
DIR=$2
PURGE=0
PROFILE=${PROFILE:-k3s}
CLIENT_CA_CHAIN=0
shift 2
while [ $# -gt 0 ]; do
  case $CMD:$1 in
    down:--purge) PURGE=1 ;;
    up:--profile)
      [ $# -ge 2 ] || usage
      PROFILE=$2
      shift
      ;;
    up:--profile=*) PROFILE=${1#--profile=} ;;
    up:--client-ca-chain) CLIENT_CA_CHAIN=1 ;;
    *) usage ;;
  esac
  shift
done
[ -n "$DIR" ] || usage
case $CMD in
  up)
    case $PROFILE in
      k3s | kubeadm) ;;
      *)
        echo "cluster: unknown profile \"$PROFILE\" (k3s or kubeadm)" >&2
        usage
        ;;
    esac
    if [ "$CLIENT_CA_CHAIN" = 1 ] && [ "$PROFILE" != k3s ]; then
      echo "cluster: --client-ca-chain is for the k3s profile only" >&2
      usage
    fi
    up
    ;;
  down) down ;;
  *) usage ;;
esac
