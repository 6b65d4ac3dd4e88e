"""Shared fixtures: the scenario inventory as Ansible sees it (raw host vars, groups), the lab hosts over SSH, and the
deployed cloud through the openstack CLI and openstacksdk with the admin clouds.yaml."""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import openstack
import pytest
import testinfra
import yaml

REPO = Path(__file__).resolve().parents[1]
# The admin cloud in the clouds.yaml the deploy writes.
CLOUD = "stackwright"


@pytest.fixture(scope="session")
def inventory():
    path = os.environ["STACKWRIGHT_INVENTORY"]
    out = subprocess.run(["ansible-inventory", "-i", path, "--list"], check=True, capture_output=True, text=True,
                         cwd=REPO).stdout
    data = json.loads(out)
    groups = {name: data.get(name, {}).get("hosts", []) for name in ("controller", "network", "compute", "storage")}
    return {"path": path, "hostvars": data["_meta"]["hostvars"], "groups": groups}


@pytest.fixture(scope="session")
def lab_state_dir():
    return Path(os.environ["STACKWRIGHT_LAB_STATE_DIR"])


@pytest.fixture(scope="session")
def secrets(inventory):
    return yaml.safe_load((Path(inventory["path"]) / "secrets.yml").read_text())


@pytest.fixture(scope="session")
def podman_env(lab_state_dir):
    """Environment for the lab's podman calls (its containers.conf lives two levels above the lab's state)."""
    return dict(os.environ, CONTAINERS_CONF=str(lab_state_dir.parent.parent / "containers.conf"))


@pytest.fixture(scope="session")
def remote(lab_state_dir):
    """testinfra host by inventory name, over the lab's SSH configuration."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = testinfra.get_host(f"ssh://{name}", ssh_config=str(lab_state_dir / "ssh_config"))
        return cache[name]

    return get


def wait_until(check, attempts=60, delay=2.0):
    """Poll `check` until it returns a truthy value; bounded by attempts, never by measured time."""
    last = None
    for _ in range(attempts):
        last = check()
        if last:
            return last
        time.sleep(delay)
    return last


@pytest.fixture
def hostvars(host, inventory):
    name = host.backend.get_hostname()
    return inventory["hostvars"][name]


@pytest.fixture(scope="session")
def poll():
    return wait_until


def delete_and_wait(conn, servers, attempts=90, delay=2.0):
    """Delete servers and wait until nova no longer knows them; fails naming any still there. A deleted server shows
    status DELETED, and still appears in lists, until its compute host has finished with it: waiting for that status
    alone lets the next check see it."""
    for server in servers:
        conn.compute.delete_server(server, ignore_missing=True)

    def left():
        return [server.id for server in servers if conn.compute.find_server(server.id) is not None]

    assert wait_until(lambda: not left(), attempts=attempts, delay=delay), (
        f"servers not deleted: {[describe_stuck_server(conn, server_id) for server_id in left()]}"
    )


def describe_stuck_server(conn, server_id):
    """What nova says of a server that did not go away: its states, fault and the last actions with their events, so a
    failure tells whether the delete reached the compute host and where it stopped."""
    server = conn.compute.find_server(server_id)
    if server is None:
        return {"id": server_id, "status": "gone"}
    actions = []
    for action in list(conn.compute.server_actions(server_id))[:3]:
        detail = conn.compute.get_server_action(action.request_id, server_id)
        events = [(event.event, event.result, event.finish_time) for event in detail.events or []]
        actions.append({"action": action.action, "start": action.start_time, "message": action.message,
                        "events": events})  # fmt: skip
    return {"id": server_id, "status": server.status, "task_state": server.task_state, "vm_state": server.vm_state,
            "host": server.compute_host, "fault": server.fault, "actions": actions}  # fmt: skip


@pytest.fixture(scope="session")
def delete_servers():
    return delete_and_wait


def run_playbook(inventory_path, playbook, *args):
    """Run a playbook against the scenario inventory; returns (process, {host: changed count})."""
    run = subprocess.run(["ansible-playbook", "-i", inventory_path, str(playbook), *args], cwd=REPO,
                         capture_output=True, text=True, check=False,
                         # Plain text: the recap is parsed (molecule run by hand forces colour).
                         env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="false",
                                  ANSIBLE_NOCOLOR="true"))
    recap = {host: int(changed) for host, changed in
             re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", run.stdout, re.M)}
    return run, recap


@pytest.fixture(scope="session")
def playbook_runner(inventory):
    return lambda playbook, *args: run_playbook(inventory["path"], playbook, *args)


@pytest.fixture(scope="session")
def restarted_units(remote, lab_state_dir):
    """Hosts whose service PIDs or start times differ from the snapshot taken before the idempotence run."""

    def check():
        before = json.loads((lab_state_dir / "service-state.json").read_text())
        changed = {}
        for name, state in before.items():
            units = [line.split("=", 1)[1] for line in state.splitlines() if line.startswith("Id=")]
            now = remote(name).check_output(
                "systemctl show --property=Id,MainPID,ActiveEnterTimestamp " + " ".join(units)
            )
            if now != state.strip():
                changed[name] = {"before": state.strip(), "now": now}
        return changed

    return check


@pytest.fixture(scope="session")
def credentials_dir(inventory, lab_state_dir):
    """Where the deploy put clouds.yaml and the CA: scenarios keep them with the lab, lab inventories in themselves."""
    for directory in (lab_state_dir, Path(inventory["path"])):
        if (directory / "clouds.yaml").is_file():
            return directory
    pytest.fail(f"no clouds.yaml in {lab_state_dir} or {inventory['path']}: was the cloud deployed?")


@pytest.fixture(scope="session")
def ca_file(credentials_dir):
    """The cloud's CA certificate (the pki role's pki_dir sits next to clouds.yaml)."""
    return credentials_dir / "pki" / "ca.crt"


@pytest.fixture(scope="session")
def clouds_yaml(credentials_dir):
    return credentials_dir / "clouds.yaml"


@pytest.fixture(scope="session")
def cli(clouds_yaml):
    """Runs `openstack <args> -f json` as the admin user and returns the parsed output."""
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(clouds_yaml), OS_CLOUD=CLOUD)

    def run(*args):
        out = subprocess.run(["openstack", *args, "-f", "json"], env=env, check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    return run


@pytest.fixture(scope="session")
def conn(clouds_yaml):
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud=CLOUD))
