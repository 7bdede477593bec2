#!/usr/bin/env bash
# Runs a command against a throwaway moto server (a local DynamoDB and friends), then stops the server.
#
#   scripts/with-moto.sh cargo test -p tocsin-aws
#
# Creates .venv with moto[server] on first use (needs only python3 and pip), starts moto on a free
# loopback port, exports AWS_ENDPOINT_URL, dummy credentials and TOCSIN_REQUIRE_AWS=1 (so AWS-backed
# tests fail instead of skipping), runs the command and exits with its status. The server is stopped on
# every way out: success, failure, Ctrl-C, TERM.
set -euo pipefail

MOTO_VERSION="5.2.5"
STARTUP_TIMEOUT_S=30

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARG...]" >&2
    exit 64
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="$venv/bin/python"

say() { echo "with-moto: $*" >&2; }

make_venv() {
    rm -rf "$venv"
    # Debian ships venv's pip bootstrap (ensurepip) in a separate package; without it, make a venv with
    # no pip of its own and let the system pip install into it.
    if python3 -m venv "$venv" >/dev/null 2>&1 && [ -x "$venv/bin/pip" ]; then
        return
    fi
    rm -rf "$venv"
    say "python3 -m venv has no ensurepip here; using the system pip for $venv"
    python3 -m venv --without-pip "$venv"
}

pip_install() {
    if [ -x "$venv/bin/pip" ]; then
        "$py" -m pip install -q --disable-pip-version-check "$@"
    else
        python3 -m pip --python "$py" install -q --disable-pip-version-check "$@"
    fi
}

if [ ! -x "$py" ]; then
    say "creating $venv"
    make_venv
fi
if ! "$py" -c "import moto, flask, flask_cors, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    say "installing moto[server]==$MOTO_VERSION into $venv"
    pip_install "moto[server]==$MOTO_VERSION"
fi

port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
log="$(mktemp "${TMPDIR:-/tmp}/moto-server.XXXXXX.log")"
moto_pid=""

stop_moto() {
    if [ -n "$moto_pid" ] && kill -0 "$moto_pid" 2>/dev/null; then
        kill "$moto_pid" 2>/dev/null || true
        # Give it a moment to exit cleanly, then make sure nothing is left behind.
        for _ in $(seq 1 50); do
            kill -0 "$moto_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    moto_pid=""
    rm -f "$log"
}
cmd_pid=""
on_signal() {
    # Stop the command, then clean up. TERM even on Ctrl-C: a background command of a non-interactive
    # shell ignores SIGINT.
    if [ -n "$cmd_pid" ]; then
        kill -TERM "$cmd_pid" 2>/dev/null || true
        wait "$cmd_pid" 2>/dev/null || true
    fi
    stop_moto
    exit "$1"
}
trap stop_moto EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!

endpoint="http://127.0.0.1:$port"
if ! "$py" - "$endpoint" "$STARTUP_TIMEOUT_S" "$moto_pid" <<'PY'
import os, sys, time, urllib.request
url, timeout, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("moto_server exited during startup")
    try:
        urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(f"moto_server did not answer on {url} within {timeout:.0f} s")
PY
then
    say "moto_server failed to start; its log:"
    tail -n 20 "$log" >&2 || true
    exit 69
fi
say "moto_server $MOTO_VERSION on $endpoint (pid $moto_pid)"

export AWS_ENDPOINT_URL="$endpoint"
export AWS_REGION="us-east-1"
export AWS_DEFAULT_REGION="us-east-1"
export AWS_ACCESS_KEY_ID="testing"
export AWS_SECRET_ACCESS_KEY="testing"
export TOCSIN_REQUIRE_AWS=1
# A stray session token or profile from the caller's shell must not leak into requests to moto.
unset AWS_SESSION_TOKEN AWS_PROFILE

# In the background so that a signal to this script is handled at once; stdin stays the caller's.
"$@" <&0 &
cmd_pid=$!
status=0
wait "$cmd_pid" || status=$?
cmd_pid=""
exit "$status"
