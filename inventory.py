"""The servers to deploy to: edit this file.

Add each server to `hubs` as a name pyinfra reaches over SSH, or as (name, data)
with per-host connection settings and per-host `jh_` settings that differ from
group_data/all.py:

    hubs = [
        "hub.example.org",
        ("hub2.example.org", {"ssh_user": "admin", "_sudo": True, "jh_domain": "hub2.example.org"}),
    ]

Then: .venv/bin/pyinfra inventory.py deploy.py (see README.md). The local demo
(`make demo`) has its own inventory, .demo/inventory.py, written while it runs.
"""

hubs = [
    # ("hub.example.org", {"ssh_user": "admin", "_sudo": True}),
]

# Compute nodes of a Slurm cluster behind the hub (jh_cluster = True; docs/cluster.md), each
# with its address on the network it shares with the hub:
#     nodes = [("node1.example.org", {"jh_cluster_address": "10.0.0.11"})]
nodes = []
