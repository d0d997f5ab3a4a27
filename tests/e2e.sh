#!/usr/bin/env bash
# The end-to-end suite (make e2e), as four pytest sessions side by side: the machine has
# 2 cores and the targets mostly wait on the network and disk. Each session has its own
# containers and its own ports for Pebble and the file server (JHD_PORT_OFFSET); both
# share the images and the Docker engine, started here first and stopped at the end.
# Arguments are passed to every pytest run (e.g. -x, -k).
set -euo pipefail
cd "$(dirname "$0")/.."

python=.venv/bin/python
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
"$python" -m tests.harness images noble bookworm xenial jammy trixie focal bullseye bionic

# Each session is bounded as a whole (besides pytest-timeout's limit per test, pytest.ini): past
# its budget it gets SIGTERM, on which it prints every thread's stack (tests/e2e/conftest.py),
# so CI fails with a reason instead of running out of time.
budget=${JHD_SESSION_BUDGET:-3000}
session() { # NAME PORT_OFFSET [VAR=VALUE...] -- PYTEST_ARGS...
    local name=$1 offset=$2
    shift 2
    local settings=()
    while [ "$1" != -- ]; do settings+=("$1"); shift; done
    shift
    local status=0
    env JHD_PORT_OFFSET="$offset" "${settings[@]}" timeout --kill-after=60 "$budget" \
        "$python" -m pytest "$@" >"$logs/$name.log" 2>&1 || status=$?
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
        echo "e2e session $name: stopped after its budget of $budget s (JHD_SESSION_BUDGET); stacks above" \
            >>"$logs/$name.log"
    fi
    return "$status"
}

# Container names are fixed per module: the modules that use the `hubs` targets (the
# session-wide Ubuntu 24.04 and Debian 12 hubs) must stay in one session. The day-2 module
# runs once per release, each with its own containers: one per session.
session hubs 0 -- "$@" tests/e2e/test_hub.py tests/e2e/test_kernels.py tests/e2e/test_web.py \
    tests/e2e/test_conda.py tests/e2e/test_courses.py &
hubs=$!
session others 100 JHD_DAY2_SUITES=noble -- "$@" tests/e2e/test_day2.py tests/e2e/test_unsupported.py \
    tests/e2e/test_releases.py tests/e2e/test_people.py tests/e2e/test_operations.py tests/e2e/test_subdomains.py tests/e2e/test_sharing.py &
others=$!
session servers 200 JHD_DAY2_SUITES=bookworm -- "$@" tests/e2e/test_user_servers.py tests/e2e/test_day2.py \
    tests/e2e/test_logins.py tests/e2e/test_oidc.py tests/e2e/test_lti13.py &
servers=$!
session cluster 300 -- "$@" tests/e2e/test_cluster.py tests/e2e/test_database.py tests/e2e/test_class_arrives.py &
cluster=$!
status=0
wait "$hubs" || status=1
wait "$others" || status=1
wait "$servers" || status=1
wait "$cluster" || status=1
for log in "$logs"/hubs.log "$logs"/others.log "$logs"/servers.log "$logs"/cluster.log; do
    echo "=================== $(basename "$log" .log) ==================="
    cat "$log"
done
"$python" -m tests.harness engine-stop || true

# One closing line for all sessions, from their pytest summaries.
count() { grep -ohE "[0-9]+ ($1)" "$logs"/*.log | awk '{n += $1} END {print n + 0}'; }
echo "e2e: $(count passed) passed, $(count 'failed|errors?') failed, $(count skipped) skipped"
exit "$status"
