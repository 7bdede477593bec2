#!/usr/bin/env bash
# Runs checkov (pinned) on infra/template.yaml. checkov pins its own boto3, pydantic and friends, which
# would fight moto's and sam's in the shared .venv, so it lives in a venv of its own inside it,
# .venv/checkov, created on first use (with the system pip when venv has no ensurepip, as
# scripts/venv-install.sh does).
#
#   scripts/checkov.sh [EXTRA CHECKOV ARGS...]
#
# Fails when any check fails: every check the template does not pass carries an inline
# `checkov:skip=ID:why` comment on its resource instead.
set -euo pipefail

CHECKOV_VERSION="3.3.30"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv/checkov"
py="$venv/bin/python"

say() { echo "checkov: $*" >&2; }

if [ ! -x "$py" ]; then
    say "creating $venv"
    mkdir -p "$root/.venv"
    if ! { python3 -m venv "$venv" >/dev/null 2>&1 && [ -x "$venv/bin/pip" ]; }; then
        rm -rf "$venv"
        python3 -m venv --without-pip "$venv"
    fi
fi
have="$("$py" -c 'from importlib.metadata import version
try:
    print(version("checkov"))
except Exception:
    pass')"
if [ "$have" != "$CHECKOV_VERSION" ]; then
    say "installing checkov==$CHECKOV_VERSION into $venv"
    if [ -x "$venv/bin/pip" ]; then
        "$py" -m pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
    else
        python3 -m pip --python "$py" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
    fi
fi
# No network: no prisma platform, no version check, no telemetry.
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
exec "$venv/bin/checkov" --quiet --compact --skip-download --framework cloudformation \
    -f "$root/infra/template.yaml" "$@"
