#!/usr/bin/env bash
# Installs the Debian bookworm packages arle needs that are not installed yet. Idempotent: when
# everything is present it changes nothing and needs no network. Works as root or through sudo.
# Usage: scripts/install-deps.sh [--with-fuzz] [--with-python-ref]
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ make pkg-config ccache
  # libraries (DESIGN.md §8; docs/dependencies.md says why each is here)
  libhwy-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libpcre2-dev
  libunistring-dev zlib1g-dev libboost-dev libedit-dev
  # run time: the agent's tool sandbox
  bubblewrap
  # tests: the REPL in a real terminal
  tmux
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3
)
for arg in "$@"; do
  case "$arg" in
    --with-fuzz) packages+=(clang libclang-rt-14-dev) ;;
    # Only needed to regenerate goldens (tests/reference/*.py), never to run the tests.
    --with-python-ref) packages+=(python3-torch python3-numpy python3-jinja2 python3-regex) ;;
    *) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo_cmd=()
elif command -v sudo >/dev/null 2>&1; then
  sudo_cmd=(sudo)
else
  echo "install-deps.sh: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps.sh: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
