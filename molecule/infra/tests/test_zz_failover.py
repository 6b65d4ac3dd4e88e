"""Stop the controller holding the VIP: the VIP moves, Galera and RabbitMQ keep serving; start it: it rejoins."""

import json
import subprocess
import urllib.request
from pathlib import Path

from test_infra import ca_context, controllers, management_api, sql, vip, wsrep

REPO = Path(__file__).resolve().parents[3]


def vip_holder(remote, inventory):
    for name in controllers(inventory):
        if f" {vip(inventory)}/" in remote(name).check_output("ip -o -4 addr show"):
            return name
    return None


def vip_healthz(inventory):
    try:
        with urllib.request.urlopen(f"https://{vip(inventory)}:1936/healthz",
                                    context=ca_context(inventory), timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def booted(remote, name):
    """Whether the restarted host runs with every unit up; sshd refuses connections until it has started."""
    try:
        return remote(name).run("systemctl is-system-running --wait").stdout.strip() == "running"
    except RuntimeError:  # testinfra's SSH backend: no connection yet
        return False


def test_controller_failover_and_rejoin(remote, inventory, secrets, podman_env, poll, playbook_runner):
    holder = vip_holder(remote, inventory)
    assert holder, "no controller holds the internal VIP"
    survivors = [name for name in controllers(inventory) if name != holder]

    subprocess.run(["podman", "stop", "-t", "60", holder], check=True, env=podman_env, capture_output=True)
    try:
        assert poll(lambda: vip_holder(remote, {**inventory, "groups": {"controller": survivors}}), attempts=30)
        assert poll(lambda: vip_healthz(inventory), attempts=30)

        for name in survivors:
            assert poll(lambda name=name: wsrep(remote, name, "wsrep_cluster_size") == "2", attempts=30), name
        sql(remote, survivors[0], "REPLACE INTO molecule.t VALUES (2, 'written-during-failover')")
        assert sql(remote, survivors[-1], "SELECT v FROM molecule.t WHERE id = 2").strip() == "written-during-failover"

        management_api(inventory, secrets, survivors[0], "PUT", "queues/%2F/molecule-failover", {"durable": True})
        management_api(inventory, secrets, survivors[-1], "POST", "exchanges/%2F/amq.default/publish",
                       {"properties": {}, "routing_key": "molecule-failover", "payload": "hello",
                        "payload_encoding": "string"})
        got = management_api(inventory, secrets, survivors[0], "POST", "queues/%2F/molecule-failover/get",
                             {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"})
        assert [message["payload"] for message in got] == ["hello"]
    finally:
        subprocess.run(["podman", "start", holder], check=True, env=podman_env, capture_output=True)

    assert poll(lambda: booted(remote, holder), attempts=30)
    size = str(len(controllers(inventory)))
    assert poll(lambda: wsrep(remote, holder, "wsrep_local_state_comment") == "Synced", attempts=60)
    assert wsrep(remote, holder, "wsrep_cluster_size") == size
    status = json.loads(remote(holder).check_output("rabbitmqctl cluster_status --formatter json </dev/null"))
    assert sorted(status["running_nodes"]) == sorted(f"rabbit@{name}" for name in controllers(inventory))

    run, recap = playbook_runner(Path(__file__).resolve().parents[1] / "converge.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert not any(recap.values()), {host: changed for host, changed in recap.items() if changed}
