#!/bin/sh
# Usable as $BROWSER for the pinniped CLI in tests: called with one URL, it
# starts `browser.mjs login` in the background and returns at once.
#   PINNIPED_TEST_OIDC_USER, PINNIPED_TEST_OIDC_PASSWORD  who signs in
#   PINNIPED_TEST_OIDC_CA        the provider's CA (see browser.mjs)
#   PINNIPED_TEST_BROWSER_LOG    file that gets browser.mjs' output and, when it
#                                is done, one line "open-browser: exit N"
#   PINNIPED_TEST_BROWSER_MODE   login (default) or device
# The background job holds none of the caller's stdin/stdout/stderr, so a
# caller reading the CLI's output through a pipe is not kept waiting.
set -u
log=${PINNIPED_TEST_BROWSER_LOG:-/dev/null}
if [ $# -ne 1 ] || [ -z "${PINNIPED_TEST_OIDC_USER:-}" ] || [ -z "${PINNIPED_TEST_OIDC_PASSWORD+set}" ]; then
  echo "open-browser: exit 2 (usage: PINNIPED_TEST_OIDC_USER=.. PINNIPED_TEST_OIDC_PASSWORD=.. $0 URL)" | tee -a "$log" >&2
  exit 2
fi
dir=$(cd "$(dirname "$0")" && pwd)
(
  node "$dir/browser.mjs" "${PINNIPED_TEST_BROWSER_MODE:-login}" "$1" \
    "$PINNIPED_TEST_OIDC_USER" "$PINNIPED_TEST_OIDC_PASSWORD"
  echo "open-browser: exit $?"
) </dev/null >>"$log" 2>&1 &
exit 0
