#!/usr/bin/env bash
# Installs what a fresh machine lacks for the test suite: Debian's chromium (for the browser tests,
# driven by Playwright with executable_path=/usr/bin/chromium — never a browser download).
# The Synapse homeserver used by the interop tests is installed by the test fixture itself into
# var/synapse-venv (it pins its own dependency versions).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installation de chromium (Debian) / installing Debian's chromium…"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium introuvable : installez le paquet Debian « chromium » / chromium missing: install Debian's chromium package" >&2
    exit 1
  fi
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  # The interop test with the openid-client library (tests/interop/openid_client) runs on node 20+;
  # the test itself runs `npm ci` there when node_modules is missing.
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installation de nodejs et npm (Debian) / installing Debian's nodejs and npm…"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "node/npm introuvables : installez nodejs et npm / node and npm missing: install nodejs and npm" >&2
    exit 1
  fi
fi
if ! (command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432); then
  echo "PostgreSQL injoignable sur 127.0.0.1:5432 : les tests PostgreSQL échoueront / PostgreSQL unreachable on 127.0.0.1:5432: the PostgreSQL tests will fail" >&2
fi
# axe-core (accessibility checks of the browser tests), from the npm registry into tests/browser/node_modules.
if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "Installation de npm (Debian) / installing Debian's npm…"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    else
      echo "npm introuvable : installez le paquet Debian « npm » / npm missing: install Debian's npm package" >&2
      exit 1
    fi
  fi
  echo "Installation d’axe-core (npm) / installing axe-core (npm)…"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
