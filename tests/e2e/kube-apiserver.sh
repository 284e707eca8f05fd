#!/bin/sh
# kube-apiserver.sh [kube-apiserver|kube-controller-manager]
# Prints the path of a kube-apiserver (default) or kube-controller-manager
# binary built from Debian's `kubernetes` source package, building it once
# into a cache outside the checkout (keyed by the component, the source
# version and the patches below). Progress goes to stderr; the build log to
# a file.
#
# Kubernetes 1.20 was built with Go 1.15; Debian 12 has Go 1.19, and two
# vendored packages break under it. We patch both before building (bump
# `patches` when this list changes, so that cached binaries are rebuilt):
# 1. github.com/modern-go/reflect2 1.0.1 (Go >= 1.18): kube-apiserver dies
#    with "fatal error: fault" in map iteration the first time it encodes an
#    unstructured object, i.e. on the first custom resource. We vendor in
#    reflect2 1.0.2 (Debian's golang-github-modern-go-reflect2-dev).
# 2. go-openapi/validate type.go (Go >= 1.16, kubernetes#99804): a custom
#    resource field holding "" is rejected as null ("must be of type string:
#    \"null\""). We apply upstream's fix (kube-openapi#230): only nil is null.
set -eu
component=${1:-kube-apiserver}
case "$component" in
kube-apiserver | kube-controller-manager) ;;
*)
  echo "usage: $0 [kube-apiserver|kube-controller-manager]" >&2
  exit 2
  ;;
esac
cache=${PINNIPED_CACHE:-/var/cache/pinniped}
lock_wait=${PINNIPED_BUILD_WAIT:-1800}
export DEBIAN_FRONTEND=noninteractive
reflect2_src=/usr/share/gocode/src/github.com/modern-go/reflect2
need=""
for p in golang-go rsync jq etcd-server golang-github-modern-go-reflect2-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  echo "kube-apiserver: installing$need" >&2
  # shellcheck disable=SC2086 # a list of package names
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 $need >/dev/null
fi
version=$(apt-cache showsrc kubernetes 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1)
[ -n "$version" ] || { echo "kube-apiserver: no kubernetes source package (run make deps for the deb-src entry)" >&2; exit 1; }
reflect2=$(dpkg-query -W -f '${Version}' golang-github-modern-go-reflect2-dev)
dpkg --compare-versions "$reflect2" ge 1.0.2 ||
  { echo "kube-apiserver: need golang-github-modern-go-reflect2-dev >= 1.0.2, have $reflect2" >&2; exit 1; }
patches=2
dir="$cache/$component-$version+patches$patches"
bin="$dir/$component"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$dir"
log="$dir/build.log"
lock="$cache/.build.lock"
exec 9>"$lock"
if ! flock -n 9; then
  echo "kube-apiserver: another build holds $lock; waiting (at most ${lock_wait}s)..." >&2
  flock -w "$lock_wait" 9 || { echo "kube-apiserver: gave up waiting for $lock" >&2; exit 1; }
fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
work="$dir/src"
rm -rf "$work" && mkdir -p "$work"
fail() { echo "$component: $1; see $log" >&2; tail -n 30 "$log" >&2; exit 1; }
echo "kube-apiserver: fetching Debian source kubernetes $version (about 34 MB)... log: $log" >&2
(cd "$work" && apt-get source --download-only "kubernetes=$version") >"$log" 2>&1 || fail "apt-get source failed"
(cd "$work" && dpkg-source --no-check -x kubernetes_*.dsc tree) >>"$log" 2>&1 || fail "dpkg-source failed"
vendored="$work/tree/vendor/github.com/modern-go/reflect2"
[ -d "$vendored" ] || fail "no vendored reflect2 at $vendored"
echo "vendoring reflect2 $reflect2 from $reflect2_src" >>"$log"
rsync -a --delete --exclude '*_test.go' --exclude go.mod "$reflect2_src/" "$vendored/" >>"$log" 2>&1 ||
  fail "could not vendor reflect2"
zero_check='if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {'
for f in "$work/tree/vendor/github.com/go-openapi/validate/type.go" \
  "$work/tree/vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go"; do
  grep -qF "$zero_check" "$f" || fail "unexpected $f: the zero-value check to patch is not there"
  sed -i 's/if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {/if data == nil {/' "$f"
  echo "patched the zero-value check in $f" >>"$log"
done
# Every component not yet cached is built in the same run: they share most
# of their packages, so two cost little more than one (a fresh machine needs
# both for the e2e).
what="cmd/$component"
others=""
for c in kube-apiserver kube-controller-manager; do
  [ "$c" = "$component" ] && continue
  [ -x "$cache/$c-$version+patches$patches/$c" ] && continue
  what="$what cmd/$c"
  others="$others $c"
done
echo "$component${others:+ (and$others)}: building with Debian's Go (about 4 minutes on 2 cores, more when busy)..." >&2
gopath="$work/gopath"
mkdir -p "$gopath/src/k8s.io"
ln -sfn "$work/tree" "$gopath/src/k8s.io/kubernetes"
arch=$(dpkg --print-architecture)
(
  cd "$gopath/src/k8s.io/kubernetes"
  GOPATH="$gopath" GO111MODULE=off GOFLAGS=-mod=vendor CGO_ENABLED=0 GOCACHE="$work/gocache" \
    make WHAT="$what" KUBE_BUILD_PLATFORMS="linux/$arch" >>"$log" 2>&1
) &
pid=$!
while kill -0 $pid 2>/dev/null; do printf '.' >&2; sleep 10; done
echo >&2
wait $pid || fail "build failed"
for c in $component $others; do
  out=$(find "$work/tree/_output" -name "$c" -type f -perm -u+x | head -n1)
  [ -n "$out" ] || fail "built, but no $c binary found"
  d="$cache/$c-$version+patches$patches"
  mkdir -p "$d"
  cp "$out" "$d/$c.tmp" && mv "$d/$c.tmp" "$d/$c"
done
rm -rf "$work"
echo "$bin"
