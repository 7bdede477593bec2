#!/usr/bin/env bash
# Runs checkov (pinned) on infra/template.yaml. checkov pins its own boto3, pydantic and friends, which
# would fight moto's and sam's in the shared .venv, so it lives in a venv of its own inside it,
# .venv/checkov, made on first use by scripts/venv-install.sh.
#
#   scripts/checkov.sh [EXTRA CHECKOV ARGS...]
#
# Fails when any check fails: every check the template does not pass carries an inline skip on its
# resource (Metadata: checkov: skip: [{id, comment}]) saying why.
set -euo pipefail

CHECKOV_VERSION="3.3.30"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv/checkov"
VENV_DIR="$venv" bash "$root/scripts/venv-install.sh" "checkov==$CHECKOV_VERSION"
# No network: no platform mapping download, no package scan.
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
exec "$venv/bin/checkov" --quiet --compact --skip-download --framework cloudformation \
    -f "$root/infra/template.yaml" "$@"
