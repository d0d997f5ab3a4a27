"""Site-wide settings for every host: edit these (tasks/settings.py lists them all).

Every setting starts with `jh_`; an unknown `jh_` name stops the deploy.
"""

# Unix accounts the deploy creates for hub users, with crypt(3) password hashes
# (`openssl passwd -6`); users that already exist on the host need only be in
# jh_users_group to log in.
# jh_users = [{"name": "alice", "password_hash": "$6$..."}]
# jh_admin_users = ["alice"]

# Stop single-user servers after an hour without activity.
jh_idle_timeout = 3600

# CA certificates (files on this machine) the servers must trust, e.g. a
# TLS-intercepting proxy's: pip, npm and apt on the servers need them.
# jh_extra_ca_certificates = ["/usr/local/share/ca-certificates/proxy-ca.crt"]
