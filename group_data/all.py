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

# Kernels users compute in (packages: a folder of files/kernels/), and NLTK data.
# jh_kernels = [{"name": "python3", "display_name": "Python 3", "packages": "teaching"}]
# jh_nltk_packages = ["stopwords", "punkt"]

# The public site: nginx with a Let's Encrypt certificate for this name.
# jh_domain = "hub.example.org"
# jh_acme_email = "admin@example.org"
# jh_services = [{"path": "/rstudio/", "upstream": "http://127.0.0.1:8787/", "websockets": True}]

# CA certificates (files on this machine) the servers must trust, e.g. a
# TLS-intercepting proxy's: pip, npm and apt on the servers need them.
# jh_extra_ca_certificates = ["/usr/local/share/ca-certificates/proxy-ca.crt"]
