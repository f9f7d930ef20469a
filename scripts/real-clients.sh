#!/usr/bin/env bash
# Drives a running fabric with the clients FortiGate users automate with, unchanged:
# fortigate-api (REST), netmiko (SSH) and the Ansible fortinet.fortios collection (REST).
#
# Start the default fabric first, in another terminal:  cargo run --release -- up
# then:                                                 scripts/real-clients.sh
#
# The first run creates a Python virtual environment in .venv/ (ignored by git, about
# 160 MB) with the versions below; later runs reuse it. Not part of `cargo test`.
# Settings (environment variables, defaults for cluster-configs/default.toml):
#   ROOT_HOST=127.0.0.11 MEMBER_HOST=127.0.0.12 HTTPS_PORT=10443 SSH_PORT=10022
#   ADMIN_USER=admin ADMIN_PASSWORD=... API_KEY=...   (as in the topology's [admin] and
#   [[api_user]]), STATE=.fabricsim/default (for the fabric CA, to verify HTTPS).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import fortigate_api, netmiko, ansible' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet fortigate-api==2.0.8 'netmiko>=4.8,<4.9' ansible-core==2.19.14
    wheels=$(mktemp -d)
    "$VENV/bin/pip" download --quiet --no-deps ansible==12.3.0 -d "$wheels"
    site=$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')
    # Only the three collections the playbook uses, not the whole 500 MB package.
    "$VENV/bin/python" - "$wheels"/ansible-12.3.0-py3-none-any.whl "$site" <<'PY'
import sys, zipfile
wheel, site = sys.argv[1], sys.argv[2]
wanted = ("ansible_collections/fortinet/fortios/", "ansible_collections/ansible/netcommon/",
          "ansible_collections/ansible/utils/")
with zipfile.ZipFile(wheel) as archive:
    archive.extractall(site, [n for n in archive.namelist() if n.startswith(wanted)])
PY
    rm -rf "$wheels"
fi
exec "$VENV/bin/python" scripts/real_clients.py "$@"
