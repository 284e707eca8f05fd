#!/bin/sh
# `make test`. Usage:
#   tools/test.sh BUILD ENTRIES...         this machine's suites (ENTRIES, as
#       tools/run-tests.sh takes them), then the suites $UNIT_SUITES of every
#       ARCH in $CROSS_ARCHES under qemu-user (build/ARCH/tests/suites), then
#       the real-cluster e2e inside the cluster's network namespace, once per
#       control-plane profile in $E2E_PROFILES (default "k3s k3s-chain kubeadm"), each
#       on its own cluster in ${E2E_DIR:-/tmp/pinniped-e2e}-PROFILE;
#   tools/test.sh --cross ARCH BUILD ENTRIES... only ARCH's suites under qemu-user.
# All are counted together in one closing line "N passed, N failed".
set -u
tally=$(mktemp)
trap 'rm -f "$tally"' EXIT
export TEST_TALLY="$tally"
results=${TEST_RESULTS:-build/test-results}

qemu_for() {
  case $1 in
    amd64) echo qemu-x86_64-static ;;
    arm64) echo qemu-aarch64-static ;;
    armhf) echo qemu-arm-static ;;
    *) echo "unknown-arch-$1" ;;
  esac
}

# cross ARCH BUILD BINS...: the cross-built suites, each started by qemu-user;
# the programs they start go through BUILD/run/ wrappers.
cross() {
  arch=$1 dir=$(realpath -m "$2")
  shift 2
  q=$(qemu_for "$arch")
  if ! command -v "$q" >/dev/null; then
    TEST_RESULTS=$results/$arch tools/run-tests.sh "missing:$arch suites ($q not installed; make deps)"
    return
  fi
  # qemu-user emulates the CPU: crypto runs ~5-20x slower, so waits stretch.
  TEST_RUNNER=$q TEST_LABEL=$arch TEST_RESULTS=$results/$arch PINNIPED_SLOW=${PINNIPED_SLOW_CROSS:-8} \
    PINNIPED_BIN="$dir/run/pinniped" PINNIPED_BIN_FILE="$dir/pinniped" PINNIPED_EXAMPLE="$dir/run/readme-example" \
    PINNIPED_STATIC="$(realpath -m "build/static/$arch/pinniped")" PINNIPED_STATIC_RUNNER=$q \
    PINNIPED_NM=nm tools/run-tests.sh "$@"
}

total() {
  awk '{p += $1; f += $2} END {printf "%d passed, %d failed\n", p, f; exit f ? 1 : 0}' "$tally"
}

if [ "${1:-}" = --cross ]; then
  shift
  cross "$@"
  total
  exit
fi

BUILD=$1
shift
E2E_DIR=${E2E_DIR:-/tmp/pinniped-e2e}
# k3s-chain: k3s whose client-ca.crt holds an intermediate and its root
# (k3s's custom-CA layout), the signer key being the intermediate's.
E2E_PROFILES=${E2E_PROFILES:-k3s k3s-chain kubeadm}
e2e_bin=$BUILD/tests/e2e/test_e2e
[ $# -gt 0 ] && TEST_LABEL=$(dpkg --print-architecture 2>/dev/null || uname -m) tools/run-tests.sh "$@"

for arch in ${CROSS_ARCHES:-}; do
  set --
  suites=$(realpath -m "build/$arch/tests/suites")
  if [ -x "$suites" ]; then
    for s in ${UNIT_SUITES:-}; do set -- "$@" "suite:$suites:$s"; done
  fi
  if [ $# = 0 ]; then
    TEST_RESULTS=$results/$arch tools/run-tests.sh "missing:$arch suites (not built: make ARCH=$arch test-bins)"
  else
    cross "$arch" "build/$arch" "$@"
  fi
done

# e2e PROFILE: the suite on a fresh cluster of that profile; a cluster that
# does not come up counts as one failed suite.
e2e() {
  profile=$1 dir=$E2E_DIR-$1
  # Only one cluster at a time: stop the one an earlier run left in this
  # folder, never another's (down stops everything in the namespace).
  if owner=$(tests/e2e/cluster.sh owner); then
    if [ "$(realpath -m "$owner")" = "$(realpath -m "$dir")" ]; then
      tests/e2e/cluster.sh down "$dir" >/dev/null 2>&1
    else
      echo "e2e-$profile: another e2e cluster is up ($owner); the e2e suite counts as failed"
      TEST_RESULTS=$results/e2e-$profile tools/run-tests.sh "missing:e2e-$profile-cluster"
      return
    fi
  fi
  case $profile in
    k3s-chain) flags="--profile k3s --client-ca-chain" ;;
    *) flags="--profile $profile" ;;
  esac
  # shellcheck disable=SC2086 # two or three words
  if tests/e2e/cluster.sh up "$dir" $flags; then
    PROFILE=$profile E2E_DIR=$dir TEST_LABEL=e2e-$profile TEST_RESULTS=$results/e2e-$profile \
      tools/run-tests.sh "netns:pinniped-e2e:$e2e_bin"
  else
    echo "e2e-$profile: the cluster did not come up (see above); the e2e suite counts as failed"
    TEST_RESULTS=$results/e2e-$profile tools/run-tests.sh "missing:e2e-$profile-cluster"
  fi
  tests/e2e/cluster.sh down "$dir" >/dev/null 2>&1
}

if [ "$(id -u)" = 0 ]; then
  for profile in $E2E_PROFILES; do e2e "$profile"; done
else
  echo "e2e: needs root (network namespace); the e2e suite counts as failed"
  tools/run-tests.sh "missing:e2e-needs-root"
fi
total
