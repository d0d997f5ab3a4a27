"""The settings test_bad_settings.py gives the model: each bad one with the setting its message
must name, and good ones that must still pass."""

HASH = "$6$saltsalt$" + "a" * 86
SHA256 = "0" * 64
WEB = {"jh_domain": "hub.example.org"}
NOTIFY = {"jh_notify_on_failure": True}
MANUAL = {**WEB, "jh_certificate": "manual"}


class File(str):
    """A file of the `pem` fixture, by name: replaced with its path before validation."""


def kernel(**fields):
    """One kernel; a field given as None is left out."""
    entry = {"name": "k", "display_name": "K", "packages": "minimal", **fields}
    return {"jh_kernels": [{key: value for key, value in entry.items() if value is not None}]}


def service(upstream, path="/app/"):
    return {**WEB, "jh_services": [{"path": path, "upstream": upstream}]}


# name -> (settings, the exact setting the message must name)
BAD = {
    # Accounts and groups
    "hub user with a trailing newline": ({"jh_hub_user": "jupyter\n"}, "jh_hub_user"),
    "hub user root": ({"jh_hub_user": "root"}, "jh_hub_user"),
    "hub user systemd-network": ({"jh_hub_user": "systemd-network"}, "jh_hub_user"),
    "hub user _apt": ({"jh_hub_user": "_apt"}, "jh_hub_user"),
    "hub user named like the docker group": ({"jh_hub_user": "docker"}, "jh_hub_user"),
    "hub user with a space": ({"jh_hub_user": "jupyter hub"}, "jh_hub_user"),
    "users group sudo": ({"jh_users_group": "sudo"}, "jh_users_group"),
    "users group adm": ({"jh_users_group": "adm"}, "jh_users_group"),
    "users group wheel": ({"jh_users_group": "wheel"}, "jh_users_group"),
    "users group users": ({"jh_users_group": "users"}, "jh_users_group"),
    "users group with %": ({"jh_users_group": "%sudo"}, "jh_users_group"),
    "user name with ;": ({"jh_users": [{"name": "bob;reboot"}]}, "jh_users[0][name]"),
    "user name with a Cyrillic a": ({"jh_users": [{"name": "\u0430lice"}]}, "jh_users[0][name]"),
    "user named admin": ({"jh_users": [{"name": "admin"}]}, "jh_users[0][name]"),
    "user named www-data": ({"jh_users": [{"name": "alice"}, {"name": "www-data"}]}, "jh_users[1][name]"),
    "admin with $()": ({"jh_admin_users": ["$(id)"]}, "jh_admin_users[0]"),
    "admin with a trailing newline": ({"jh_admin_users": ["alice\n"]}, "jh_admin_users[0]"),
    "admin nobody": ({"jh_admin_users": ["nobody"]}, "jh_admin_users[0]"),
    "password hash with a trailing newline": (
        {"jh_users": [{"name": "bob", "password_hash": HASH + "\n"}]},
        "jh_users[0][password_hash]",
    ),
    "password hash with a quote": (
        {"jh_users": [{"name": "bob", "password_hash": "$6$salt$x'; reboot; '"}]},
        "jh_users[0][password_hash]",
    ),
    # Host paths
    "install root /": ({"jh_install_root": "/"}, "jh_install_root"),
    "install root under /etc": ({"jh_install_root": "/etc/jupyter"}, "jh_install_root"),
    "install root under /usr": ({"jh_install_root": "/usr/local/jupyter"}, "jh_install_root"),
    "install root /opt itself": ({"jh_install_root": "/opt"}, "jh_install_root"),
    "install root /srv itself": ({"jh_install_root": "/srv/"}, "jh_install_root"),
    "install root under /home": ({"jh_install_root": "/home/jupyter"}, "jh_install_root"),
    "install root under /tmp": ({"jh_install_root": "/tmp/jupyter"}, "jh_install_root"),
    "install root under /var": ({"jh_install_root": "/var/lib/jupyter"}, "jh_install_root"),
    "install root with a trailing newline": ({"jh_install_root": "/opt/jupyter\n"}, "jh_install_root"),
    "install root with a space": ({"jh_install_root": "/opt/jupyter hub"}, "jh_install_root"),
    "install root with a systemd specifier": ({"jh_install_root": "/opt/jupyter%i"}, "jh_install_root"),
    "install root with //": ({"jh_install_root": "/opt//jupyter"}, "jh_install_root"),
    "install root with a . part": ({"jh_install_root": "/opt/./jupyter"}, "jh_install_root"),
    "install root with ;": ({"jh_install_root": "/opt/jupyter;reboot"}, "jh_install_root"),
    "install root with a quote": ({"jh_install_root": '/opt/jupyter"'}, "jh_install_root"),
    "install root with a division slash": ({"jh_install_root": "/opt/jupyter\u2215hub"}, "jh_install_root"),
    "install root inside the conda prefix": ({"jh_install_root": "/opt/miniconda3/hub"}, "jh_install_root"),
    "conda prefix /usr": ({"jh_conda_prefix": "/usr"}, "jh_conda_prefix"),
    "conda prefix with $": ({"jh_conda_prefix": "/opt/$HOME"}, "jh_conda_prefix"),
    "conda prefix with {}": ({"jh_conda_prefix": "/opt/{conda}"}, "jh_conda_prefix"),
    "server release with ..": ({"jh_server_release": "../jupyterhub-6"}, "jh_server_release"),
    "server release with a trailing newline": ({"jh_server_release": "jupyterhub-6\n"}, "jh_server_release"),
    "server release with ;": ({"jh_server_release": "jupyterhub-6;id"}, "jh_server_release"),
    "server release path with a space": ({"jh_server_release": "/srv/locks/my release"}, "jh_server_release"),
    "server release path with ..": ({"jh_server_release": "/srv/locks/../jupyterhub-6"}, "jh_server_release"),
    # URLs
    "pip index with a space and an option": (
        {"jh_pip_index_url": "https://mirror.example.org/simple --trusted-host evil.example"},
        "jh_pip_index_url",
    ),
    "pip index with ;": ({"jh_pip_index_url": "https://mirror.example.org/simple;reboot"}, "jh_pip_index_url"),
    "pip index with backticks": ({"jh_pip_index_url": "https://mirror.example.org/`id`/"}, "jh_pip_index_url"),
    "pip index with $()": ({"jh_pip_index_url": "https://mirror.example.org/$(id)/"}, "jh_pip_index_url"),
    "pip index with user:password": (
        {"jh_pip_index_url": "https://user:secret@mirror.example.org/simple"},
        "jh_pip_index_url",
    ),
    "pip index with a trailing newline": (
        {"jh_pip_index_url": "https://mirror.example.org/simple\n"},
        "jh_pip_index_url",
    ),
    "pip index with a tab": ({"jh_pip_index_url": "https://mirror.example.org/\tsimple"}, "jh_pip_index_url"),
    "pip index with a Cyrillic o": ({"jh_pip_index_url": "https://mirr\u043er.example.org/simple"}, "jh_pip_index_url"),
    "npm registry with &": ({"jh_npm_registry_url": "https://npm.example.org/?a=1&reboot"}, "jh_npm_registry_url"),
    "npm registry with a quote": ({"jh_npm_registry_url": "https://npm.example.org/'"}, "jh_npm_registry_url"),
    "nltk index with |": ({"jh_nltk_index_url": "https://nltk.example.org/index.xml|sh"}, "jh_nltk_index_url"),
    "acme directory with a double quote": (
        {"jh_acme_directory_url": 'https://acme.example.org/dir"'},
        "jh_acme_directory_url",
    ),
    "conda installer with >": (
        {"jh_conda_installer_url": "https://x.example.org/a.sh>/etc/x"},
        "jh_conda_installer_url",
    ),
    "channel alias with {}": ({"jh_conda_channel_alias": "https://conda.example.org/{x}"}, "jh_conda_channel_alias"),
    "channel alias with a bare %": (
        {"jh_conda_channel_alias": "https://conda.example.org/%zz"},
        "jh_conda_channel_alias",
    ),
    "channel alias with a backslash": (
        {"jh_conda_channel_alias": "https://conda.example.org\\x"},
        "jh_conda_channel_alias",
    ),
    # Services (nginx's proxy_pass)
    "upstream at the hub's API": (service("http://127.0.0.1:8081/"), "jh_services[0][upstream]"),
    "upstream at the proxy's API via localhost": (service("http://localhost:8001/"), "jh_services[0][upstream]"),
    "upstream at Alertmanager (past the admins' sign-in)": (
        service("http://127.0.0.1:9093/"),
        "jh_services[0][upstream]: must not point at Alertmanager (port 9093",
    ),
    "upstream at the hub's API via ::1": (service("http://[::1]:8081/"), "jh_services[0][upstream]"),
    "upstream at the hub's API via 0.0.0.0": (service("http://0.0.0.0:8081/"), "jh_services[0][upstream]"),
    "upstream at the hub's API as a number": (service("http://2130706433:8081/"), "jh_services[0][upstream]"),
    "upstream at the proxy's public port": (service("http://127.0.0.1:8000/"), "jh_services[0][upstream]"),
    "upstream at nginx itself": (service("http://127.0.0.1/"), "jh_services[0][upstream]"),
    "upstream on a users' server port": (service("http://127.0.0.1:25000/"), "among the users' servers' ports"),
    "upstream with an nginx variable": (service("http://127.0.0.1:8787/$request_uri"), "jh_services[0][upstream]"),
    "upstream with a query": (service("http://127.0.0.1:8787/?x=1"), "jh_services[0][upstream]"),
    "upstream with a fragment": (service("http://127.0.0.1:8787/#x"), "jh_services[0][upstream]"),
    "upstream path without a trailing /": (service("http://127.0.0.1:8787/rstudio"), "jh_services[0][upstream]"),
    "upstream with user:password": (service("http://u:p@127.0.0.1:8787/"), "jh_services[0][upstream]"),
    "upstream with ; and a directive": (service("http://127.0.0.1:8787/;return 200"), "jh_services[0][upstream]"),
    "upstream with a trailing newline": (service("http://127.0.0.1:8787/\n"), "jh_services[0][upstream]"),
    "upstream with an uppercase host": (service("http://LOCALHOST:8081/"), "jh_services[0][upstream]"),
    "upstream on a unix socket": (service("unix:/run/app.sock"), "jh_services[0][upstream]"),
    "service path with a space": (service("http://127.0.0.1:8787/", path="/r s/"), "jh_services[0][path]"),
    "service path with {}": (service("http://127.0.0.1:8787/", path="/r{}/"), "jh_services[0][path]"),
    # ACME contact
    "e-mail with a trailing newline": ({**WEB, "jh_acme_email": "admin@example.org\n"}, "jh_acme_email"),
    "e-mail with ;": ({**WEB, "jh_acme_email": "admin@example.org;reboot"}, "jh_acme_email"),
    "e-mail with a space": ({**WEB, "jh_acme_email": "admin @example.org"}, "jh_acme_email"),
    "e-mail starting with -": ({**WEB, "jh_acme_email": "--staging@example.org"}, "jh_acme_email"),
    "e-mail without a dot in the domain": ({**WEB, "jh_acme_email": "admin@localhost"}, "jh_acme_email"),
    # The notifier's ExecStart=
    "notify command not absolute": ({**NOTIFY, "jh_notify_command": "page-admin"}, "jh_notify_command"),
    "notify command with %": ({**NOTIFY, "jh_notify_command": "/usr/local/bin/page %n"}, "jh_notify_command"),
    "notify command with $": ({**NOTIFY, "jh_notify_command": "/usr/local/bin/page $HOME"}, "jh_notify_command"),
    "notify command with ;": ({**NOTIFY, "jh_notify_command": "/usr/local/bin/page ; /bin/sh"}, "jh_notify_command"),
    "notify command with quotes": ({**NOTIFY, "jh_notify_command": "/usr/local/bin/page 'a b'"}, "jh_notify_command"),
    "notify command with a newline": (
        {**NOTIFY, "jh_notify_command": "/usr/local/bin/page\nExecStartPre=/bin/sh -c id"},
        "jh_notify_command",
    ),
    "notify command with a backslash": (
        {**NOTIFY, "jh_notify_command": "/usr/local/bin/page a\\b"},
        "jh_notify_command",
    ),
    "notify command with two spaces": ({**NOTIFY, "jh_notify_command": "/usr/local/bin/page  -u"}, "jh_notify_command"),
    # Kernels
    "kernel name with a trailing newline": (kernel(name="python3\n"), "jh_kernels[0][name]"),
    "display name with a newline": (kernel(display_name="Python\nInjected"), "jh_kernels[0][display_name]"),
    "display name with a tab": (kernel(display_name="Python\t3"), "jh_kernels[0][display_name]"),
    "display name with NUL": (kernel(display_name="Python\x003"), "jh_kernels[0][display_name]"),
    "display name with a right-to-left override": (
        kernel(display_name="Python \u202e3"),
        "jh_kernels[0][display_name]",
    ),
    "display name with a leading space": (kernel(display_name=" Python 3"), "jh_kernels[0][display_name]"),
    "display name over 100 characters": (kernel(display_name="P" * 101), "jh_kernels[0][display_name]"),
    "kernel packages with ..": (kernel(packages="../teaching"), "jh_kernels[0][packages]"),
    "kernel packages with a /": (kernel(packages="teaching/"), "jh_kernels[0][packages]"),
    "kernel environment with a trailing newline": (
        kernel(packages=None, environment="teaching.yml\n"),
        "jh_kernels[0][environment]",
    ),
    "kernel environment as an absolute path": (
        kernel(packages=None, environment="/etc/passwd.yml"),
        "jh_kernels[0][environment]",
    ),
    # Other strings
    "domain with a trailing newline": ({"jh_domain": "hub.example.org\n"}, "jh_domain"),
    "domain with a Cyrillic e": ({"jh_domain": "hub.\u0435xample.org"}, "jh_domain"),
    "base URL with a trailing newline": ({**WEB, "jh_base_url": "/jupyter/\n"}, "jh_base_url"),
    "base URL with ..": ({**WEB, "jh_base_url": "/../"}, "jh_base_url"),
    "nltk package with a trailing newline": ({"jh_nltk_packages": ["stopwords\n"]}, "jh_nltk_packages[0]"),
    "nltk package with ;": ({"jh_nltk_packages": ["punkt;id"]}, "jh_nltk_packages[0]"),
    "conda channel with a trailing newline": ({"jh_conda_channels": ["conda-forge\n"]}, "jh_conda_channels[0]"),
    "conda channel with a space": ({"jh_conda_channels": ["conda-forge", "bio conda"]}, "jh_conda_channels[1]"),
    "conda channel that is an option": ({"jh_conda_channels": ["--override"]}, "jh_conda_channels[0]"),
    "sha256 with a trailing newline": ({"jh_conda_installer_sha256": SHA256 + "\n"}, "jh_conda_installer_sha256"),
    "sha256 in uppercase": ({"jh_conda_installer_sha256": "A" * 64}, "jh_conda_installer_sha256"),
    "boolean as a number": ({"jh_firewall": 1}, "jh_firewall"),
    "port as a boolean": ({"jh_public_port": True}, "jh_public_port"),
    # Certificates and keys (files made by the pem fixture)
    "private key as a CA certificate": ({"jh_extra_ca_certificates": [File("key.pem")]}, "jh_extra_ca_certificates[0]"),
    "CA file with a key appended": (
        {"jh_extra_ca_certificates": [File("ca-and-key.crt")]},
        "jh_extra_ca_certificates[0]",
    ),
    "CA file with garbage": ({"jh_extra_ca_certificates": [File("garbage.crt")]}, "jh_extra_ca_certificates[0]"),
    "CA file with text around the block": (
        {"jh_extra_ca_certificates": [File("ca.crt"), File("chatty.crt")]},
        "jh_extra_ca_certificates[1]",
    ),
    "CA file in DER form": ({"jh_extra_ca_certificates": [File("der.crt")]}, "jh_extra_ca_certificates[0]"),
    "empty CA file": ({"jh_extra_ca_certificates": [File("empty.crt")]}, "jh_extra_ca_certificates[0]"),
    "server certificate as a CA": ({"jh_extra_ca_certificates": [File("leaf.crt")]}, "jh_extra_ca_certificates[0]"),
    "certificate request as a CA": ({"jh_extra_ca_certificates": [File("request.crt")]}, "jh_extra_ca_certificates[0]"),
    "CA file with a broken block": ({"jh_extra_ca_certificates": [File("broken.crt")]}, "jh_extra_ca_certificates[0]"),
    "CA file name with a space": ({"jh_extra_ca_certificates": [File("my ca.crt")]}, "jh_extra_ca_certificates[0]"),
    "CA file name starting with -": ({"jh_extra_ca_certificates": [File("-ca.crt")]}, "jh_extra_ca_certificates[0]"),
    "two CA files with one remote name": (
        {"jh_extra_ca_certificates": [File("ca.crt"), File("ca.pem")]},
        "jh_extra_ca_certificates[1]",
    ),
    "key as the site certificate": (
        {**MANUAL, "jh_certificate_file": File("key.pem"), "jh_certificate_key_file": File("key.pem")},
        "jh_certificate_file",
    ),
    "certificate as the site key": (
        {**MANUAL, "jh_certificate_file": File("leaf.crt"), "jh_certificate_key_file": File("leaf.crt")},
        "jh_certificate_key_file",
    ),
    "two keys in the site key file": (
        {**MANUAL, "jh_certificate_file": File("leaf.crt"), "jh_certificate_key_file": File("two-keys.pem")},
        "jh_certificate_key_file",
    ),
    "encrypted site key": (
        {**MANUAL, "jh_certificate_file": File("leaf.crt"), "jh_certificate_key_file": File("encrypted.pem")},
        "jh_certificate_key_file",
    ),
    "site key of another certificate": (
        {**MANUAL, "jh_certificate_file": File("leaf.crt"), "jh_certificate_key_file": File("other-key.pem")},
        "jh_certificate_key_file",
    ),
    # Well-formed, and dangerous (issue 25): folders that overlap or that root runs programs from
    # where others write, clear text, no bound.
    "shared folder is the conda installation": (
        {"jh_shared_dirs": [{"path": "/opt/miniconda3", "mode": "read-only"}]},
        "jh_conda_prefix",
    ),
    "shared folder above the conda installation": (
        {"jh_conda_prefix": "/srv/data/conda", "jh_shared_dirs": [{"path": "/srv/data", "mode": "read-only"}]},
        "jh_conda_prefix",
    ),
    "off-boarding folder above the install root": (
        {"jh_install_root": "/srv/archive/jupyter", "jh_offboard_dir": "/srv/archive"},
        "jh_install_root",
    ),
    "off-boarding folder is the backup staging folder": (
        {"jh_offboard_dir": "/var/backups/jupyterhub-deploy"},
        "jh_offboard_dir",
    ),
    "off-boarding folder is the conda installation": ({"jh_offboard_dir": "/opt/miniconda3"}, "jh_conda_prefix"),
    "off-boarding folder above a shared folder": (
        {"jh_offboard_dir": "/srv/keep", "jh_shared_dirs": [{"path": "/srv/keep/nlp", "mode": "read-only"}]},
        "jh_offboard_dir",
    ),
    "shared folder named .jupyter": (
        {"jh_shared_dirs": [{"path": "/srv/.jupyter", "mode": "read-only"}]},
        "jh_shared_dirs[0]",
    ),
    "shared folder named .ssh": (
        {
            "jh_groups": {"ml": []},
            "jh_shared_dirs": [{"path": "/srv/ml/.ssh", "group": "ml", "mode": "group-writable"}],
        },
        "jh_shared_dirs[0]",
    ),
    "notifier in /tmp": ({**NOTIFY, "jh_notify_command": "/tmp/notify"}, "jh_notify_command"),
    "notifier in /var/tmp": ({**NOTIFY, "jh_notify_command": "/var/tmp/x/notify --now"}, "jh_notify_command"),
    "notifier in the hub's state folder": (
        {**NOTIFY, "jh_notify_command": "/opt/jupyter/state/notify"},
        "jh_notify_command",
    ),
    "notifier in a home": ({**NOTIFY, "jh_notify_command": "/home/ops/bin/notify"}, "jh_notify_command"),
    "the hub's account in a people's group": ({"jh_groups": {"ml": ["jupyter"]}}, "jh_groups"),
    "proxy on every address without TLS": ({"jh_public_ip": "0.0.0.0"}, "jh_public_ip"),
    "proxy on a public address without TLS": ({"jh_public_ip": "203.0.113.7"}, "jh_public_ip"),
    "pip index over plain http": ({"jh_pip_index_url": "http://pypi.example.org/simple/"}, "jh_pip_index_url"),
    "npm registry over plain http": ({"jh_npm_registry_url": "http://npm.example.org/"}, "jh_npm_registry_url"),
    "conda mirror over plain http": ({"jh_conda_channel_alias": "http://conda.example.org/"}, "jh_conda_channel_alias"),
    "NLTK index over plain http": ({"jh_nltk_index_url": "http://nltk.example.org/index.xml"}, "jh_nltk_index_url"),
    "conda installer over plain http": (
        {"jh_conda_installer_url": "http://repo.example.org/Miniforge3.sh"},
        "jh_conda_installer_url",
    ),
    "no process limit at all": ({"jh_user_tasks_limit": None}, "jh_user_tasks_limit"),
    "memory larger than any machine": ({"jh_user_memory_limit": "9999999T"}, "jh_user_memory_limit"),
    "group memory larger than any machine": (
        {"jh_group_limits": {"ml": {"memory": "100T"}}},
        "jh_group_limits[ml][memory]",
    ),
    "backups in a folder anyone may write": ({"jh_backup_dir": File("open/backups")}, "jh_backup_dir"),
    "backups still to be made in a sticky folder": ({"jh_backup_dir": File("sticky/backups")}, "jh_backup_dir"),
}


GOOD = {
    "install root below /srv": {"jh_install_root": "/srv/jupyter", "jh_conda_prefix": "/srv/conda"},
    "install root below /opt with a trailing /": {"jh_install_root": "/opt/hub/"},
    "pip index with a port and a path": {"jh_pip_index_url": "https://mirror.example.org:8443/pypi/simple/"},
    "npm registry with a %XX escape": {"jh_npm_registry_url": "https://npm.example.org/%40scope/"},
    "loopback upstream on its own port": service("http://127.0.0.1:8787/"),
    "upstream without a path": service("http://127.0.0.1:9000"),
    "upstream by name, with https and a path": service("https://rstudio.internal.example.org:8443/rstudio/"),
    "upstream on an IPv6 address": service("http://[2001:db8::1]:8787/"),
    "notify command with an argument": {**NOTIFY, "jh_notify_command": "/usr/local/bin/page-admin --urgent"},
    "notify command with several arguments": {
        **NOTIFY,
        "jh_notify_command": "/opt/ops/bin/notify --to=ops@example.org --level=2,3",
    },
    "e-mail with a plus": {**WEB, "jh_acme_email": "admin+hub@example.org"},
    "display name with accents and brackets": kernel(display_name="Python 3 (Données, ß)"),
    "admin users not in jh_users": {"jh_users": [{"name": "alice"}], "jh_admin_users": ["alice", "ops"]},
    "server release by name": {"jh_server_release": "jupyterhub-5"},
    "a risk taken on purpose: the proxy in clear on a lab network": {
        "jh_public_ip": "0.0.0.0",
        "jh_allow_public_http": True,
    },
    "a risk taken on purpose: a plain-http mirror": {
        "jh_pip_index_url": "http://mirror.lab/simple/",
        "jh_allow_plain_http_downloads": True,
    },
    "a risk taken on purpose: no process limit": {"jh_user_tasks_limit": None, "jh_allow_unlimited_tasks": True},
}
