#!/bin/sh
# Runs one node:test file of the openai e2e suite (`run_node_test.sh test DIR FILE`), or installs
# DIR/node_modules once with `npm ci` (`run_node_test.sh setup DIR`). Exits 77, which CTest reports
# as skipped (SKIP_RETURN_CODE), when Node.js >= 20 or npm is missing.
set -u
mode=$1
dir=$2
skip() {
  echo "SKIP: $*" >&2
  exit 77
}
command -v node >/dev/null 2>&1 ||
  skip "node is not installed; the openai e2e tests need Node.js >= 20 (and npm)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 20 ] 2>/dev/null || skip "Node.js $(node --version) is too old; the openai e2e tests need >= 20"
have_client() { [ -f "$dir/node_modules/openai/package.json" ]; }
case $mode in
  setup)
    if have_client; then
      echo "$dir/node_modules is present"
      exit 0
    fi
    command -v npm >/dev/null 2>&1 ||
      skip "npm is not installed; it is needed once to install the openai client into $dir/node_modules"
    cd "$dir" && exec npm ci --prefer-offline --no-audit --no-fund
    ;;
  test)
    file=$3
    command -v npm >/dev/null 2>&1 || have_client ||
      skip "npm is not installed and $dir/node_modules is missing"
    have_client || {
      echo "error: $dir/node_modules/openai is missing: the e2e_openai_setup test (npm ci) failed" >&2
      exit 1
    }
    cd "$dir" && exec node --test --test-reporter=spec "$file"
    ;;
  *)
    echo "usage: $0 setup DIR | test DIR FILE" >&2
    exit 2
    ;;
esac
