#!/usr/bin/env bash
# Installs pinned Python-packaged tools into the repo's .venv (created the way scripts/with-moto.sh does,
# with the system pip when venv has no ensurepip), skipping what is already there at that version.
#
#   scripts/venv-install.sh cfn-lint==1.58.0 cargo-lambda==1.9.2
#   VENV_DIR=.venv/checkov scripts/venv-install.sh checkov==3.3.30   # a venv of its own
#
# Prints nothing when everything is present; the Makefile puts .venv/bin on PATH afterwards.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 NAME==VERSION..." >&2
    exit 64
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV_DIR:-$root/.venv}"
py="$venv/bin/python"

say() { echo "venv-install: $*" >&2; }

if [ ! -x "$py" ]; then
    say "creating $venv"
    mkdir -p "$(dirname "$venv")"
    if ! { python3 -m venv "$venv" >/dev/null 2>&1 && [ -x "$venv/bin/pip" ]; }; then
        rm -rf "$venv"
        say "python3 -m venv has no ensurepip here; using the system pip for $venv"
        python3 -m venv --without-pip "$venv"
    fi
fi

missing=()
for spec in "$@"; do
    name="${spec%%==*}"
    name="${name%%\[*}"
    want="${spec#*==}"
    have="$("$py" -c 'import sys
from importlib.metadata import version, PackageNotFoundError
try:
    print(version(sys.argv[1]))
except PackageNotFoundError:
    pass' "$name")"
    [ "$have" = "$want" ] || missing+=("$spec")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

say "installing ${missing[*]} into $venv"
if [ -x "$venv/bin/pip" ]; then
    "$py" -m pip install -q --disable-pip-version-check "${missing[@]}"
else
    python3 -m pip --python "$py" install -q --disable-pip-version-check "${missing[@]}"
fi
