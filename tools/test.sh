#!/bin/sh
# `make test`: every unit and integration suite, then the real-cluster e2e
# suite inside the cluster's network namespace, counted together in one
# closing line "N passed, N failed". Usage: tools/test.sh BUILD UNIT_BINS...
set -u
BUILD=$1
shift
E2E_DIR=${E2E_DIR:-/tmp/pinniped-e2e}
e2e_bin=$BUILD/tests/e2e/test_e2e
set -- "$@"
if [ "$(id -u)" = 0 ]; then
  tests/e2e/cluster.sh down "$E2E_DIR" >/dev/null 2>&1 || true
  if tests/e2e/cluster.sh up "$E2E_DIR"; then
    set -- "$@" "netns:pinniped-e2e:$e2e_bin"
  else
    echo "e2e: the cluster did not come up (see above); the e2e suite counts as failed"
    set -- "$@" "missing:e2e-cluster"
  fi
else
  echo "e2e: needs root (network namespace); the e2e suite counts as failed"
  set -- "$@" "missing:e2e-needs-root"
fi
E2E_DIR=$E2E_DIR tools/run-tests.sh "$@"
rc=$?
[ "$(id -u)" = 0 ] && tests/e2e/cluster.sh down "$E2E_DIR" >/dev/null 2>&1
exit $rc
