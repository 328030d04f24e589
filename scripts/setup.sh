#!/usr/bin/env bash
# Installs what building and testing MyCandyLocal needs on Debian bookworm, and nothing twice:
# apt packages that are missing (scripts/apt-packages.txt, pinned), Node.js when absent, and the
# npm build dependencies (deps/package-lock.json) when the lockfile changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

pinned=()
missing=()
while read -r line; do
  line="${line%%#*}"; line="$(echo "$line" | xargs)"
  [ -z "$line" ] && continue
  pkg="${line%%=*}"
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg"); pinned+=("$line")
  fi
done < scripts/apt-packages.txt
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm); pinned+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${pinned[@]}"; then
    echo "setup: warning: a pinned version is no longer in the archive; installing bookworm's current versions"
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# Vite 7 needs Node.js 20.19 or newer (bookworm's own nodejs package is 18).
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20.19 or newer is needed to build the web UI (found $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm packages, each folder reinstalled only when its lockfile changed:
#   deps/          the llama.cpp release bundle (build dependency; its GPU prebuilts are optional: skipped)
#   tests/openai/  the official openai client (test dependency)
#   ui/            React, Vite, Tailwind, Vitest, playwright-core (their native parts are optional: kept)
for entry in "deps:--omit=optional" "tests/openai:" "ui:"; do
  dir="${entry%%:*}"
  extra="${entry#*:}"
  stamp="$dir/node_modules/.mycandy-lock-sha256"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: npm ci in $dir/"
    (cd "$dir" && npm ci --ignore-scripts $extra --no-audit --no-fund)
    echo "$want" > "$stamp"
  fi
done
