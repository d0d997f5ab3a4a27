"""Site-wide settings for every host: edit these (per-host ones go in inventory.py).

docs/settings.md describes every setting, its default and an example. Every setting
starts with `jh_`; an unknown `jh_` name stops the deploy.
"""

# Layout and accounts (docs/settings.md#layout-and-accounts)
# jh_users = [{"name": "alice", "password_hash": "$6$..."}]
# jh_admin_users = ["alice"]

# Hub (docs/settings.md#hub)
jh_idle_timeout = 3600

# Kernels (docs/settings.md#kernels)
# jh_kernels = [{"name": "python3", "display_name": "Python 3", "packages": "teaching"}]
# jh_nltk_packages = ["stopwords", "punkt"]

# Web front and firewall (docs/settings.md#web-front-and-firewall)
# jh_domain = "hub.example.org"
# jh_acme_email = "admin@example.org"
# jh_services = [{"path": "/rstudio/", "upstream": "http://127.0.0.1:8787/", "websockets": True}]

# Outside world (docs/settings.md#outside-world)
# jh_extra_ca_certificates = ["/usr/local/share/ca-certificates/proxy-ca.crt"]
