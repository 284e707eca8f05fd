#!/bin/bash
# A real Kubernetes control plane for the e2e tests: etcd and kube-apiserver
# in a private network namespace (no Docker, no kubelet, no controller
# manager), with a k3s-style cluster signer minted by openssl.
#
#   cluster.sh up DIR            start; writes DIR/env and DIR/admin.kubeconfig
#   cluster.sh down DIR [--purge] stop by recorded pids, delete the namespace
#
# Runs as root. Only 127.0.0.1 and ADDR inside the namespace are used; no
# traffic leaves it. Layout of DIR: pki/ (certificates and keys), root/ (a
# k3s signer layout for --signer-root), etcd/ (data), logs/, pids/, env,
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
  echo "usage: $0 up DIR | down DIR [--purge]" >&2
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

# ---------------------------------------------------------------- PKI
# Certificates as Go tools make them (PrintableString names where possible,
# as kubeadm and k3s do), EC P-256 keys in SEC1 form like k3s.
write_openssl_config() {
  cat >"$PKI/openssl.cnf" <<EOF
[req]
distinguished_name = dn
string_mask = default
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
subjectAltName = IP:$ADDR,IP:$SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
}

# mint NAME SUBJECT EXTENSIONS [CA]: NAME.key and NAME.crt in $PKI,
# self-signed when CA is empty.
mint() {
  local name=$1 subj=$2 ext=$3 ca=${4:-}
  local key=$PKI/$name.key crt=$PKI/$name.crt
  openssl ecparam -name prime256v1 -genkey -noout -out "$key"
  chmod 600 "$key"
  if [ -z "$ca" ]; then
    openssl req -batch -new -x509 -config "$PKI/openssl.cnf" -extensions "$ext" \
      -key "$key" -subj "$subj" -days 3650 -sha256 -out "$crt"
  else
    openssl req -batch -new -config "$PKI/openssl.cnf" -key "$key" -subj "$subj" -out "$PKI/$name.csr"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
      -extfile "$PKI/openssl.cnf" -extensions "$ext" -out "$crt"
    rm -f "$PKI/$name.csr"
  fi
}

make_pki() {
  write_openssl_config
  # The cluster signer: kube-apiserver's --client-ca-file, and the key the
  # concierge signs with (k3s: server/tls/client-ca.{crt,key}).
  mint signer "/CN=k3s-client-ca" ca
  mint serving-ca "/CN=pinniped-e2e-serving-ca" ca
  mint apiserver "/CN=kube-apiserver" server serving-ca
  mint front-proxy-ca "/CN=pinniped-e2e-front-proxy-ca" ca
  mint front-proxy-client "/CN=front-proxy-client" client front-proxy-ca
  mint admin "/O=system:masters/CN=admin" client signer
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/service-account.key"
  chmod 600 "$PKI/service-account.key"
  openssl pkey -in "$PKI/service-account.key" -pubout -out "$PKI/service-account.pub"
  # The signer where `--signer-root DIR/root` finds it, as on a k3s server.
  local tls=$DIR/root/var/lib/rancher/k3s/server/tls
  mkdir -p "$tls"
  cp "$PKI/signer.crt" "$tls/client-ca.crt"
  install -m 600 "$PKI/signer.key" "$tls/client-ca.key"
}

write_kubeconfig() {
  local kc=$DIR/admin.kubeconfig
  rm -f "$kc"
  kubectl config --kubeconfig "$kc" set-cluster e2e --server "https://$ADDR:$PORT" \
    --certificate-authority "$PKI/serving-ca.crt" --embed-certs=true
  kubectl config --kubeconfig "$kc" set-credentials admin \
    --client-certificate "$PKI/admin.crt" --client-key "$PKI/admin.key" --embed-certs=true
  kubectl config --kubeconfig "$kc" set-context e2e --cluster e2e --user admin
  kubectl config --kubeconfig "$kc" use-context e2e
  chmod 600 "$kc"
}

# kube-public/cluster-info as kubeadm publishes it: where upstream Pinniped
# (and we) learn the API server's URL and CA for the CredentialIssuer.
write_cluster_info() {
  local ca
  ca=$(base64 -w0 <"$PKI/serving-ca.crt")
  cat >"$DIR/cluster-info.yaml" <<EOF
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
        server: https://$ADDR:$PORT
        certificate-authority-data: $ca
    contexts: []
    users: []
EOF
  in_ns kubectl --kubeconfig "$DIR/admin.kubeconfig" apply -f "$DIR/cluster-info.yaml"
}

write_env() {
  cat >"$DIR/env" <<EOF
# Written by tests/e2e/cluster.sh up; source it. Run clients in the
# namespace: ip netns exec \$NETNS kubectl ...
DIR='$DIR'
NETNS='$NETNS'
ADDR='$ADDR'
PORT='$PORT'
SERVER='https://$ADDR:$PORT'
KUBECONFIG='$DIR/admin.kubeconfig'
KUBE_APISERVER='$KUBE_APISERVER'
KUBE_APISERVER_VERSION='$KUBE_APISERVER_VERSION'
SERVICE_CIDR='$SERVICE_CIDR'
SA_ISSUER='$SA_ISSUER'
SIGNER_CERT='$PKI/signer.crt'
SIGNER_KEY='$PKI/signer.key'
SIGNER_ROOT='$DIR/root'
SERVING_CA='$PKI/serving-ca.crt'
FRONT_PROXY_CA='$PKI/front-proxy-ca.crt'
FRONT_PROXY_CLIENT_CERT='$PKI/front-proxy-client.crt'
FRONT_PROXY_CLIENT_KEY='$PKI/front-proxy-client.key'
ADMIN_CERT='$PKI/admin.crt'
ADMIN_KEY='$PKI/admin.key'
SA_KEY='$PKI/service-account.key'
SA_PUB='$PKI/service-account.pub'
ETCD='http://$ETCD_CLIENT'
LOGS='$DIR/logs'
PIDS='$DIR/pids'
export KUBECONFIG
EOF
}

# ---------------------------------------------------------------- up
up() {
  [ "$(id -u)" = 0 ] || fail "must run as root (network namespaces)"
  if netns_exists; then
    # Name the running cluster's DIR if its etcd says (--data-dir DIR/etcd).
    local other="" pid
    for pid in $(ip netns pids "$NETNS" 2>/dev/null); do
      other=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n '/^--data-dir$/{n;s#/etcd$##p}') || true
      [ -n "$other" ] && break
    done
    echo "cluster: network namespace $NETNS exists: a cluster is up or half-made." >&2
    echo "cluster: run first: $0 down ${other:-DIR-it-was-started-with}" >&2
    exit 1
  fi
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  PKI=$DIR/pki
  # A fresh cluster each time: drop what an earlier run left (not DIR itself).
  rm -rf "$PKI" "$DIR/root" "$DIR/etcd" "$DIR/logs" "$DIR/pids" "$DIR/env" "$DIR/admin.kubeconfig" "$DIR/cluster-info.yaml"
  mkdir -p "$PKI" "$DIR/logs" "$DIR/pids"

  step "kube-apiserver binary (tests/e2e/kube-apiserver.sh; the first build takes minutes)"
  if [ -z "${KUBE_APISERVER:-}" ]; then
    KUBE_APISERVER=$("$HERE/kube-apiserver.sh") || fail "tests/e2e/kube-apiserver.sh failed"
  fi
  [ -x "$KUBE_APISERVER" ] || fail "not executable: $KUBE_APISERVER"
  KUBE_APISERVER_VERSION=$("$KUBE_APISERVER" --version 2>&1 | awk '{print $2}')
  say "  $KUBE_APISERVER ($KUBE_APISERVER_VERSION)"

  step "etcd binary"
  if ! command -v etcd >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o DPkg::Lock::Timeout=300 etcd-server >"$DIR/logs/apt.log" 2>&1 ||
      { LOG=$DIR/logs/apt.log; fail "apt-get install etcd-server failed"; }
  fi
  for tool in etcd openssl curl kubectl ip setsid; do
    command -v "$tool" >/dev/null || fail "missing tool: $tool"
  done

  step "network namespace $NETNS with $ADDR/32 on lo"
  ip netns add "$NETNS" || fail "ip netns add $NETNS"
  in_ns ip link set lo up || fail "lo up"
  in_ns ip addr add "$ADDR/32" dev lo || fail "ip addr add $ADDR/32"

  step "PKI in $PKI" "$DIR/logs/pki.log"
  make_pki >"$LOG" 2>&1 || fail "openssl failed"

  step "etcd on $ETCD_CLIENT" "$DIR/logs/etcd.log"
  start_daemon etcd etcd --name pinniped-e2e --data-dir "$DIR/etcd" \
    --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
    --listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
    --initial-cluster "pinniped-e2e=http://$ETCD_PEER" --initial-cluster-state new
  wait_until 30 etcd in_ns curl -fsS --max-time 2 "http://$ETCD_CLIENT/health"

  step "kube-apiserver on https://$ADDR:$PORT" "$DIR/logs/kube-apiserver.log"
  start_daemon kube-apiserver "$KUBE_APISERVER" \
    --etcd-servers "http://$ETCD_CLIENT" \
    --bind-address "$ADDR" --advertise-address "$ADDR" --secure-port "$PORT" --insecure-port 0 \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/signer.crt" \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" \
    --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --service-account-key-file "$PKI/service-account.pub" \
    --service-account-signing-key-file "$PKI/service-account.key" \
    --service-account-issuer "$SA_ISSUER" \
    --api-audiences "$SA_ISSUER" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --anonymous-auth=true \
    --allow-privileged=true \
    --profiling=false \
    --v 1
  wait_until "$READY_TIMEOUT" kube-apiserver \
    sh -c "ip netns exec '$NETNS' curl -fsS --max-time 3 --cacert '$PKI/serving-ca.crt' \
      --cert '$PKI/admin.crt' --key '$PKI/admin.key' 'https://$ADDR:$PORT/readyz' | grep -qx ok"

  step "admin kubeconfig $DIR/admin.kubeconfig" "$DIR/logs/kubectl.log"
  write_kubeconfig >"$LOG" 2>&1 || fail "kubectl config failed"
  in_ns kubectl --kubeconfig "$DIR/admin.kubeconfig" get --raw /readyz >>"$LOG" 2>&1 ||
    fail "kubectl with the admin kubeconfig failed"

  step "kube-public/cluster-info" "$DIR/logs/kubectl.log"
  write_cluster_info >>"$LOG" 2>&1 || fail "could not create kube-public/cluster-info"

  write_env
  say "up: kube-apiserver $KUBE_APISERVER_VERSION at https://$ADDR:$PORT in netns $NETNS"
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
[ $# -ge 2 ] || usage
CMD=$1
DIR=$2
PURGE=0
shift 2
for a in "$@"; do
  case $a in
    --purge) PURGE=1 ;;
    *) usage ;;
  esac
done
[ -n "$DIR" ] || usage
case $CMD in
  up) [ $PURGE = 0 ] || usage; up ;;
  down) down ;;
  *) usage ;;
esac
