"""Create, read, update and delete FortiClient EMS connectors on a running fabric's root
with fortigate-api, netmiko and the Ansible module, and read each change back from a
member. Run through scripts/real-clients.sh, which prepares the virtual environment.

Every step prints what the client sent and what it read back; the first mismatch stops
the run with a non-zero exit status.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fortigate_api
import netmiko

ROOT = os.environ.get("ROOT_HOST", "127.0.0.11")
MEMBER = os.environ.get("MEMBER_HOST", "127.0.0.12")
HTTPS_PORT = int(os.environ.get("HTTPS_PORT", "10443"))
SSH_PORT = int(os.environ.get("SSH_PORT", "10022"))
ADMIN_USER = os.environ.get("ADMIN_USER", "admin")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "fabricsim")
API_KEY = os.environ.get("API_KEY", "fabricsimLocalOnlyKey0000000001")
STATE = Path(os.environ.get("STATE", ".fabricsim/default"))
CA = STATE / "pki" / "fabric-ca.pem"
FCTEMS = "api/v2/cmdb/endpoint-control/fctems"
# How long a member may take to show a change the root acknowledged.
CONVERGE_SECONDS = 10


def step(text):
    print(f"\n== {text}", flush=True)


def check(condition, what):
    if not condition:
        sys.exit(f"FAILED: {what}")
    print(f"   ok: {what}")


def rest(host, **login):
    """A fortigate-api connection that verifies the node's certificate with the fabric CA."""
    os.environ["REQUESTS_CA_BUNDLE"] = str(CA)
    api = fortigate_api.FortiGate(host=host, port=HTTPS_PORT, verify=True, **login)
    api.login()
    return api


def firmware(api):
    """The node's version and the key of its fctems table ("name" before 7.0.8)."""
    status = api.get("api/v2/monitor/system/status").json()
    major, minor, patch = (int(part) for part in status["version"].lstrip("v").split("."))
    keyed_by_id = (major, minor, patch) >= (7, 0, 8)
    return status["version"], "ems-id" if keyed_by_id else "name"


def wait_member(member, url, predicate, what):
    """Polls the member until `predicate(response)` holds, within CONVERGE_SECONDS."""
    deadline = time.monotonic() + CONVERGE_SECONDS
    while True:
        response = member.get(url)
        if predicate(response):
            check(True, f"member {MEMBER}: {what}")
            return response
        if time.monotonic() > deadline:
            check(False, f"member {MEMBER}: {what} (last: {response.status_code} {response.text[:300]})")
        time.sleep(0.2)


def fortigate_api_crud(root, member, key, slot):
    step(f"fortigate-api {fortigate_api.__name__}: token login, create/read/update/delete on the root")
    mkey = str(slot) if key == "ems-id" else "ems-fgtapi"
    entry = {"name": "ems-fgtapi", "server": "127.0.0.31", "https-port": 8443}
    if key == "ems-id":
        entry.update({"ems-id": slot, "status": "enable"})
    url = f"{FCTEMS}/{mkey}"
    created = root.post(FCTEMS, entry)
    print(f"   POST {FCTEMS} -> {created.status_code} {created.text[:200]}")
    if key == "ems-id" and created.status_code != 200:
        # On firmware whose slots always exist, creating is writing the slot.
        created = root.put(url, entry)
        print(f"   PUT {url} -> {created.status_code} {created.text[:200]}")
    check(created.ok, "create acknowledged")
    result = root.get_results(url)[0]
    check(result.get("server") == "127.0.0.31", f"root reads server 127.0.0.31: {result.get('server')}")
    check(result.get("https-port") == 8443, "root reads https-port 8443 as a number")
    wait_member(member, url, lambda r: r.ok and r.json()["results"][0]["server"] == "127.0.0.31", "has the entry")

    updated = root.put(url, {"server": "ems.lab.example", "https-port": 9443})
    check(updated.ok and updated.json().get("revision_changed") is True, f"update acknowledged: {updated.text[:200]}")
    wait_member(member, url, lambda r: r.ok and r.json()["results"][0]["https-port"] == 9443, "has the update")

    bad = root.put(url, {"https-port": 70000})
    check(bad.status_code >= 400, f"an out-of-range port is refused: {bad.status_code} {bad.text[:200]}")
    check(root.get_results(url)[0].get("https-port") == 9443, "the refused write changed nothing")

    refused = member.put(url, {"https-port": 1000})
    check(refused.status_code >= 400, f"a write on the member is refused: {refused.status_code} {refused.text[:200]}")

    deleted = root.delete(url)
    check(deleted.ok, f"delete acknowledged: {deleted.status_code}")
    check(root.get(url).status_code == 404, "the root answers 404 for the deleted entry")
    wait_member(member, url, lambda r: r.status_code == 404 or not r.json()["results"][0].get("server"), "lost it too")


def netmiko_crud(member, key, slot):
    step(f"netmiko {netmiko.__version__}: SSH config block on the root, read back on a member")
    device = dict(device_type="fortinet", host=ROOT, port=SSH_PORT, username=ADMIN_USER, password=ADMIN_PASSWORD)
    edit = f"edit {slot}" if key == "ems-id" else 'edit "ems-netmiko"'
    lines = ["config endpoint-control fctems", edit]
    if key == "ems-id":
        lines += ["set name ems-netmiko", "set status enable"]
    lines += ["set server 127.0.0.31", "set https-port 8443", "end"]
    with netmiko.ConnectHandler(**device) as ssh:
        print(f"   prompt: {ssh.find_prompt()!r}")
        version = ssh.send_command("get system status | grep Version")
        check("Version:" in version, f"get system status | grep Version: {version.strip()}")
        output = ssh.send_config_set(lines)
        print("   " + output.replace("\n", "\n   "))
        check("Command fail" not in output, "the config block ran without errors")
        shown = ssh.send_command("show endpoint-control fctems")
        check('set server "127.0.0.31"' in shown, "show on the root has the entry")
    mkey = str(slot) if key == "ems-id" else "ems-netmiko"
    wait_member(member, f"{FCTEMS}/{mkey}", lambda r: r.ok and r.json()["results"][0]["server"] == "127.0.0.31", "has the SSH change")
    with netmiko.ConnectHandler(**dict(device, host=MEMBER)) as ssh:
        shown = ssh.send_command("show endpoint-control fctems")
        check('set server "127.0.0.31"' in shown, "netmiko on the member shows it")
    with netmiko.ConnectHandler(**device) as ssh:
        output = ssh.send_config_set(["config endpoint-control fctems", f"delete {mkey}", "end"])
        check("Command fail" not in output, f"delete {mkey} over SSH")


def ansible_crud(root, member, slot):
    step("Ansible fortinet.fortios.fortios_endpoint_control_fctems: present twice, then absent")
    here = Path(__file__).parent / "ansible"
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inventory.json"
        inventory.write_text(json.dumps({"all": {"hosts": {"root": {
            "ansible_host": ROOT,
            "ansible_connection": "httpapi",
            "ansible_network_os": "fortinet.fortios.fortios",
            "ansible_httpapi_use_ssl": True,
            "ansible_httpapi_port": HTTPS_PORT,
            "ansible_httpapi_validate_certs": True,
            "ansible_httpapi_ca_path": str(CA.resolve()),
            "ansible_python_interpreter": sys.executable,
            "fortios_access_token": API_KEY,
            "ems_id": slot,
        }}}}))
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1",
                   ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_LOCALHOST_WARNING="False",
                   SSL_CERT_FILE=str(CA.resolve()))
        playbook = Path(sys.executable).parent / "ansible-playbook"
        runs = {}
        for tags in ("present", "present", "absent"):
            done = subprocess.run([str(playbook), "-i", str(inventory), str(here / "fctems.yml"), "--tags", tags],
                                  env=env, capture_output=True, text=True, timeout=300)
            print("   " + done.stdout.strip().replace("\n", "\n   "))
            check(done.returncode == 0, f"ansible-playbook --tags {tags} succeeded ({done.stderr.strip()[-300:]})")
            runs.setdefault(tags, []).append(done.stdout)
            if tags == "present" and len(runs[tags]) == 1:
                wait_member(member, f"{FCTEMS}/{slot}", lambda r: r.ok and r.json()["results"][0]["name"] == "ems-ansible", "has the Ansible entry")
        first, second = runs["present"]
        check("changed=1" in first, "the first run changed the fabric")
        check("changed=0" in second, "the second run changed nothing")
        check("changed=1" in runs["absent"][0], "state: absent reported a change")
    check(root.get(f"{FCTEMS}/{slot}").status_code == 404, "the root answers 404 for the Ansible entry")
    wait_member(member, f"{FCTEMS}/{slot}", lambda r: r.status_code == 404, "lost the Ansible entry (404)")


def main():
    check(CA.is_file(), f"the fabric CA is at {CA} (is `fabricsim up` running here?)")
    root = rest(ROOT, token=API_KEY)
    member = rest(MEMBER, token=API_KEY)
    version, key = firmware(root)
    print(f"fabric firmware {version}, fctems keyed by {key}")

    step("session login (/logincheck) with the admin password, then logout")
    session = rest(ROOT, username=ADMIN_USER, password=ADMIN_PASSWORD)
    check(session.get(FCTEMS).ok, "a session reads the fctems table")
    session.logout()

    fortigate_api_crud(root, member, key, slot=3)
    if SSH_PORT:
        netmiko_crud(member, key, slot=4)
    if key == "ems-id":
        ansible_crud(root, member, slot=5)
    else:
        print("\n(the Ansible module keys fctems by ems-id: run it against a fabric with firmware 7.0.8 or later)")
    print("\nall clients passed")


if __name__ == "__main__":
    main()
