"""Which restic snapshots a restore takes (files/bin/restore-from-repository), from `restic snapshots --json`
on standard input; run by the hub venv's Python.

    pick-snapshot.py state SNAPSHOT HOST    "ID RUN HOMES HOSTNAME" of a backup's state snapshot: SNAPSHOT
                                            is `latest` (HOST's newest) or an id (short or whole)
    pick-snapshot.py homes COUNT            "ID USER" of each home snapshot (COUNT of them, or an error)
    pick-snapshot.py orphans                the ids of home snapshots whose run has no state snapshot
"""

import json
import re
import sys

USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def tag(snapshot, prefix):
    values = [t[len(prefix) :] for t in snapshot.get("tags") or () if t.startswith(prefix)]
    if len(values) != 1:
        sys.exit(f"snapshot {snapshot['short_id']} has no single {prefix}* tag: not made by the nightly backup")
    return values[0]


def state(snapshots, wanted, host):
    if wanted == "latest":
        mine = [s for s in snapshots if s.get("hostname") == host]
        if not mine:
            hosts = sorted({s.get("hostname", "?") for s in snapshots}) or ["none"]
            sys.exit(
                f"the repository holds no backup of {host} (backups of: {', '.join(hosts)}): "
                "give the snapshot's id (jh_restore_snapshot)"
            )
        chosen = max(mine, key=lambda s: s["time"])
    else:
        matching = [s for s in snapshots if s["id"].startswith(wanted)]
        if len(matching) != 1:
            sys.exit(f"no backup of the hub's state has the id {wanted} (restic-run snapshots lists them)")
        chosen = matching[0]
    print(chosen["id"], "run-" + tag(chosen, "run-"), tag(chosen, "homes-"), chosen["hostname"])


def homes(snapshots, count):
    users = {}
    for snapshot in snapshots:
        user = tag(snapshot, "user-")
        if not USER.fullmatch(user) or user in users:
            sys.exit(f"snapshot {snapshot['short_id']}: {user!r} is not one user's home")
        users[user] = snapshot["id"]
    if len(users) != int(count):
        sys.exit(f"the backup holds {count} homes, the repository {len(users)} of them: it was pruned or damaged")
    for user, snapshot_id in sorted(users.items()):
        print(snapshot_id, user)


def orphans(snapshots):
    def run(snapshot):
        return next((t for t in snapshot.get("tags") or () if t.startswith("run-")), None)

    complete = {run(s) for s in snapshots if "jupyterhub-state" in (s.get("tags") or ())}
    for snapshot in snapshots:
        if "jupyterhub-home" in (snapshot.get("tags") or ()) and run(snapshot) not in complete:
            print(snapshot["id"])


if __name__ == "__main__":
    found = json.load(sys.stdin) or []
    {"state": state, "homes": homes, "orphans": orphans}[sys.argv[1]](found, *sys.argv[2:])
