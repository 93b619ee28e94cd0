#!/usr/bin/env bash
# Checks the synthesized template (cdk.out/*.template.json, from `npm run synth`) with cfn-lint,
# installed from PyPI into a virtualenv in the cache on first use. Errors fail the check;
# warnings are printed (CDK's generated dependencies carry W3005 "redundant DependsOn").
set -euo pipefail
cd "$(dirname "$0")/.."

version=1.58.0
cache="${DATADISTILLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/datadistiller}"
venv="$cache/cfn-lint-$version"
if [ ! -x "$venv/bin/cfn-lint" ]; then
  echo "cfn-lint: installing $version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "cfn-lint==$version"
fi

shopt -s nullglob
templates=(cdk.out/*.template.json)
if [ ${#templates[@]} -eq 0 ]; then
  echo "cfn-lint: no template in cdk.out: run npm run synth first" >&2
  exit 1
fi
"$venv/bin/cfn-lint" --version
"$venv/bin/cfn-lint" --non-zero-exit-code error -- "${templates[@]}"
echo "cfn-lint: 0 errors in ${templates[*]}"
