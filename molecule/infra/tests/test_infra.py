"""The infrastructure layer seen by real clients: mysql, rabbitmqctl, HTTPS through the VIP, memcached, chronyc."""

import base64
import json
import os
import socket
import ssl
import urllib.request
from pathlib import Path

import pytest


def controllers(inventory):
    return inventory["groups"]["controller"]


def mgmt(inventory, name):
    return inventory["hostvars"][name]["management_address"]


def vip(inventory):
    return next(iter(inventory["hostvars"].values()))["internal_vip_address"]


def sql(remote, name, statement):
    return remote(name).check_output(f'mariadb -N -B -e "{statement}"')


def wsrep(remote, name, variable):
    return sql(remote, name, f"SHOW STATUS LIKE '{variable}'").split()[-1]


def ca_context(inventory):
    # The scenario keeps its CA with the lab (pki_dir in the scenario inventory).
    return ssl.create_default_context(cafile=str(Path(os.environ["STACKWRIGHT_LAB_STATE_DIR"]) / "pki" / "ca.crt"))


def test_no_service_restarted_by_the_second_run(restarted_units):
    assert restarted_units() == {}


def test_galera_cluster_is_synced_everywhere(remote, inventory):
    size = len(controllers(inventory))
    for name in controllers(inventory):
        assert wsrep(remote, name, "wsrep_cluster_size") == str(size), name
        assert wsrep(remote, name, "wsrep_local_state_comment") == "Synced", name


def test_a_row_written_on_one_node_is_read_on_another(remote, inventory):
    first, *_, last = controllers(inventory)
    sql(remote, first, "CREATE DATABASE IF NOT EXISTS molecule; "
        "CREATE TABLE IF NOT EXISTS molecule.t (id INT PRIMARY KEY, v VARCHAR(32)); "
        "REPLACE INTO molecule.t VALUES (1, 'written-on-first')")
    assert sql(remote, last, "SELECT v FROM molecule.t WHERE id = 1").strip() == "written-on-first"


def test_rabbitmq_cluster_has_every_controller_running(remote, inventory):
    status = json.loads(remote(controllers(inventory)[0]).check_output(
        "rabbitmqctl cluster_status --formatter json </dev/null"))
    expected = sorted(f"rabbit@{name}" for name in controllers(inventory))
    assert sorted(status["running_nodes"]) == expected


def management_api(inventory, secrets, name, method, path, body=None):
    url = f"http://{mgmt(inventory, name)}:15672/api/{path}"
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    token = base64.b64encode(f"admin:{secrets['rabbitmq_admin_password']}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own lab address
        payload = response.read()
    return json.loads(payload) if payload else None


def test_a_queue_declared_without_arguments_is_quorum(inventory, secrets):
    name = controllers(inventory)[0]
    management_api(inventory, secrets, name, "PUT", "queues/%2F/molecule-default-type", {"durable": True})
    queue = management_api(inventory, secrets, name, "GET", "queues/%2F/molecule-default-type")
    assert queue["type"] == "quorum"


def test_guest_user_is_gone(inventory, secrets):
    users = management_api(inventory, secrets, controllers(inventory)[0], "GET", "users")
    assert "guest" not in [user["name"] for user in users]


def test_https_on_the_vip_verifies_against_our_ca(inventory):
    with urllib.request.urlopen(f"https://{vip(inventory)}:1936/healthz", context=ca_context(inventory),
                                timeout=30) as response:
        assert response.status == 200


INFRA_PLAYBOOK = Path(__file__).resolve().parents[3] / "playbooks" / "infra.yml"


def test_a_deploy_host_without_the_ca_refuses_to_make_a_new_one(remote, inventory, playbook_runner, tmp_path):
    """A deploy host that lost its CA (or an inventory moved elsewhere) must not replace the CA of a running cloud."""
    names = sorted(inventory["hostvars"])
    ca_of = {name: remote(name).check_output("sha256sum /etc/stackwright/pki/ca.crt").split()[0] for name in names}
    empty = tmp_path / "pki"
    run, recap = playbook_runner(INFRA_PLAYBOOK, "-e", f"pki_dir={empty}")
    out = " ".join(run.stdout.split())
    assert run.returncode != 0, out[-3000:]
    assert f"{empty} holds no CA key, but" in out and "Nothing was changed" in out, out[-3000:]
    assert not empty.exists(), "the refused run created the new pki_dir"
    assert not any(recap.values()), f"the refused run changed hosts: {recap}"
    for name in names:
        after = remote(name).check_output("sha256sum /etc/stackwright/pki/ca.crt").split()[0]
        assert after == ca_of[name], f"the CA of {name} changed"


@pytest.mark.parametrize("index", [0, -1])
def test_memcached_answers_stats_on_the_management_address(inventory, index):
    name = controllers(inventory)[index]
    with socket.create_connection((mgmt(inventory, name), 11211), timeout=10) as conn:
        conn.sendall(b"stats\r\nquit\r\n")
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert b"STAT limit_maxbytes" in reply and reply.rstrip().endswith(b"END")


def test_time_clients_track_a_controller(remote, inventory, poll):
    clients = [n for n in inventory["hostvars"] if n not in controllers(inventory)]
    addresses = {mgmt(inventory, n) for n in controllers(inventory)}
    for name in clients:
        def selected(name=name):
            lines = remote(name).check_output("chronyc -n sources").splitlines()
            return any(line.startswith("^*") and line.split()[1] in addresses for line in lines)
        assert poll(selected, attempts=45), remote(name).check_output("chronyc -n sources")
