# What tasks.status.show prints for a host, as "key: value" lines.
# $1: the install root, $2: the nginx site (absent without jh_domain).
root=$1 site=$2
for unit in jupyterhub jupyterhub-idle-culler nginx; do
    echo "service $unit: $(systemctl is-active $unit.service 2>/dev/null)"
done
if [ -x "$root/.venv/bin/jupyterhub" ]; then
    echo "JupyterHub: $("$root/.venv/bin/jupyterhub" --version 2>/dev/null)"
    echo "server Python: $("$root/.venv/bin/python" -c 'import sys; print(sys.version.split()[0])')"
    echo "server environment: $(readlink "$root/.venv")"
else
    echo "JupyterHub: not installed"
fi
for kernel in "$root"/kernels/*/; do
    [ -x "$kernel/bin/python" ] || continue
    echo "kernel $(basename "$kernel"): $("$kernel/bin/python" -c 'import sys; print("Python", sys.version.split()[0])' 2>&1)"
done
if [ -f "$site" ]; then
    certificate=$(sed -n 's/^ *ssl_certificate  *\([^;]*\);.*/\1/p' "$site" | head -n 1)
    if [ -n "$certificate" ] && [ -f "$certificate" ]; then
        echo "certificate expires: $(openssl x509 -noout -enddate -in "$certificate" | cut -d= -f2)"
    fi
fi
echo "disk install root: $(du -sh "$root" 2>/dev/null | cut -f1)"
echo "disk homes: $(du -sh /home 2>/dev/null | cut -f1)"
echo "user servers: $(ps -eo user=,args= | awk '/jupyterhub-singleuser/ && !/awk/ {print $1}' | sort -u | tr '\n' ' ')"
