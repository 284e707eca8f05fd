#!/bin/sh
# Installs what the OIDC login tests need: Debian's chromium (driven headless
# by tests/oidc/browser.mjs) and the locked npm packages of tests/oidc
# (oidc-provider, playwright-core). Idempotent; tools/deps.sh calls it.
# Node.js 20+ and npm come with the machine image: Debian 12's own nodejs is
# 18, too old for playwright-core, so it is not installed from here.
set -eu
[ "$(id -u)" = 0 ] || exec sudo "$0" "$@"
export DEBIAN_FRONTEND=noninteractive
dir=$(cd "$(dirname "$0")/../tests/oidc" && pwd)

if ! [ -x /usr/bin/chromium ]; then
  # apt-get update may exit non-zero while one index is mid-sync; retry and go on
  for _ in 1 2 3; do
    if apt-get update -q >/dev/null; then break; fi
    sleep 5
  done
  apt-get install -y -q --no-install-recommends chromium >/dev/null
fi

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "oidc-deps: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci empties node_modules and refills it from the lock file: only when the
# lock changed since the last run (a copy of it is kept as a stamp).
stamp="$dir/node_modules/.pinniped-lock"
if ! cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$dir/package-lock.json" "$stamp"
fi
echo "oidc-deps: installed"
