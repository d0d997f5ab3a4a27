# shellcheck shell=bash
# What the scripts that handle the hub's state share (switch-server-env, restore-hub-state,
# archive-hub-state, hub-database, wait-healthy): sourced by them, never run.
#
# First it reads the layout the deploy wrote beside the scripts, layout.env (tasks/layout.py:
# paths, unit names, the hub's account, its health URL, ...), once it is sure only root could
# have written it. Then it gives:
#   as_hub, as_postgres CMD...  CMD as the hub user or postgres (in /, through runuser): root
#                               never writes below the hub's state folder itself
#   hub_database VERB [TAG]     files/bin/hub-database
#   wait_healthy SECONDS        until the hub answers at its health URL (or SECONDS pass)
#   start_and_wait UNIT...      start the hub's UNITs, then wait_healthy 90
#   upgrade_db VENV             jupyterhub upgrade-db of VENV, as the hub user
#   undoable, step, committed   the rollback frame of the upgrade switch and the restore
#   log_step_times WHAT         each step's time since `undoable`, to the journal
#   at_exit FUNCTION            run FUNCTION when the script ends, however it ends

# root's own file (run by another user, the unit tests: that user's), not a link, that no one
# else may change: it says which paths root works on.
trusted_layout() {
    local owner mode
    if [ ! -f "$1" ] || [ -L "$1" ]; then return 1; fi
    read -r owner mode < <(stat -c '%u %a' -- "$1") || return 1
    if [ "$owner" != 0 ] && [ "$owner" != "$EUID" ]; then return 1; fi
    ! ((8#$mode & 8#022))
}

layout_env=$(dirname "$0")/layout.env
if ! trusted_layout "$layout_env"; then
    echo "$0: $layout_env is missing, or others than root may change it; the deploy writes it (deploy.py)" >&2
    exit 1
fi
# shellcheck source=/dev/null # written on the host, by tasks/layout.py
. "$layout_env"
# The PostgreSQL database's name (jh_db_url), or none: SQLite.
# shellcheck disable=SC2034 # for the scripts that source this
case $DATABASE in
postgresql:*) pg_name=${DATABASE#postgresql:} ;;
*) pg_name= ;;
esac

as_hub() { (cd / && runuser -u "$HUB_USER" -- "$@"); }
as_postgres() { (cd / && runuser -u postgres -- "$@"); }
hub_database() { "$LIBEXEC/hub-database" "$@"; }

wait_healthy() {
    local seconds=$1 deadline
    deadline=$((SECONDS + seconds))
    until curl -fsS -o /dev/null --max-time 5 "$HEALTH_URL" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "no answer from $HEALTH_URL within $seconds s" >&2
            journalctl -u "$HUB_UNIT" -n 30 --no-pager >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

start_and_wait() { systemctl start "$@" && wait_healthy 90; }

# In the state folder, as the hub user; upgrade-db runs `alembic` from PATH.
upgrade_db() {
    (cd "$STATE_DIR" && runuser -u "$HUB_USER" -- env PATH="$1/bin:$PATH" "$1/bin/jupyterhub" upgrade-db --config "$CONFIG")
}

# The rollback frame. `undoable WHAT HOW UNDO` arms it: from then on, until `committed`, a
# command that fails ends the script (set -e) through the rollback, which says at which step
# (the last `step NAME`) WHAT failed and HOW it rolls back, stops the hub, and runs the script's
# function UNDO: it puts back what the steps changed, starts the hub and says whether it came
# back. Every command of the rollback is tried, whatever fails: the hub must come back if it can.
frame_what='' frame_how='' frame_undo='' frame_step='' frame_exit=''
step_started='' step_times=''
undoable() {
    frame_what=$1 frame_how=$2 frame_undo=$3 frame_step=
    trap finish EXIT
}
# Each step's time is kept: the hub's downtime in an upgrade is the sum of a few of them.
step() {
    local now
    now=$(date +%s%N)
    if [ -n "$step_started" ]; then
        step_times="$step_times; $frame_step $(((now - step_started) / 1000000)) ms"
    fi
    frame_step=$1 step_started=$now
}
# The steps' times, to the journal (journalctl -t jupyterhub-upgrade) and standard output.
log_step_times() {
    step ""
    echo "$1: ${step_times#; }"
    logger -t jupyterhub-upgrade -- "$1: ${step_times#; }" || true
}
committed() { frame_undo=; }
at_exit() {
    frame_exit=$1
    trap finish EXIT
}

finish() {
    local status=$?
    set +e
    if [ "$status" != 0 ] && [ -n "$frame_undo" ]; then
        echo "$frame_what failed at: $frame_step; $frame_how" >&2
        systemctl stop "$HUB_UNIT"
        "$frame_undo"
        status=1
    fi
    if [ -n "$frame_exit" ]; then "$frame_exit"; fi
    exit "$status"
}
