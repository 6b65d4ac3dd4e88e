"""stackwright.cloud.rabbitmq_cluster on the scenario's RabbitMQ cluster: status, a restart in check mode, a restart
refused while another member is down, and a safe restart of one node that rejoins. Runs after test_infra (which
compares the units with the snapshot taken before the idempotence run) because it restarts a node on purpose."""

import json
import os
import subprocess
from pathlib import Path

from test_infra import controllers

REPO = Path(__file__).resolve().parents[3]


def rabbitmq_cluster(inventory, host, *, check=False, **options):
    """The module's result on one host, run by `ansible` as an operator would, read through the JSON callback."""
    argv = ["ansible", "-i", inventory["path"], host, "--become", "-m", "stackwright.cloud.rabbitmq_cluster"]
    # `-a '{}'` would be raw parameters, which the module refuses.
    argv += (["-a", json.dumps(options)] if options else []) + (["--check"] if check else [])
    json_output = {"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                   "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json"}  # fmt: skip
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), **json_output)
    run = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False, env=env)
    try:
        return json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"][host]
    except (ValueError, KeyError, IndexError) as error:
        raise AssertionError(f"no result from ansible ({error}): {run.stdout[-2000:]} {run.stderr[-2000:]}") from None


def main_pid(remote, name):
    return remote(name).check_output("systemctl show --property=MainPID --value rabbitmq-server")


def nodes(names):
    return sorted(f"rabbit@{name}" for name in names)


def test_status_reports_every_member_running_and_healthy(inventory):
    first = controllers(inventory)[0]
    result = rabbitmq_cluster(inventory, first)
    assert not result.get("failed") and not result["changed"], result.get("msg")
    status = result["rabbitmq"]
    assert status["healthy"], status["problems"]
    assert sorted(status["running_nodes"]) == nodes(controllers(inventory))
    assert status["stopped_nodes"] == [] and status["partitions"] == {} and status["alarms"] == []


def test_a_restart_in_check_mode_restarts_nothing(inventory, remote):
    target = controllers(inventory)[1]
    before = main_pid(remote, target)
    result = rabbitmq_cluster(inventory, target, check=True, state="restarted")
    assert not result.get("failed") and result["changed"], result.get("msg")
    assert main_pid(remote, target) == before


def test_a_restart_is_refused_while_another_member_is_down(inventory, remote):
    target, stopped = controllers(inventory)[1], controllers(inventory)[2]
    before = main_pid(remote, target)
    remote(stopped).run_test("systemctl stop rabbitmq-server")
    try:
        result = rabbitmq_cluster(inventory, target, state="restarted")
        assert result.get("failed"), result.get("msg")
        assert f"rabbit@{stopped}" in result["msg"] and "Nothing was restarted" in result["msg"], result["msg"]
        assert main_pid(remote, target) == before
    finally:
        # A stopped member is started without the safety checks, and the module returns once it runs in the cluster.
        started = rabbitmq_cluster(inventory, stopped, state="restarted")
    assert not started.get("failed") and started["changed"], started.get("msg")
    assert sorted(started["rabbitmq"]["running_nodes"]) == nodes(controllers(inventory))


def test_a_safe_restart_restarts_only_its_node_and_it_rejoins(inventory, remote):
    target = controllers(inventory)[1]
    others = [name for name in controllers(inventory) if name != target]
    before = {name: main_pid(remote, name) for name in controllers(inventory)}
    result = rabbitmq_cluster(inventory, target, state="restarted")
    assert not result.get("failed") and result["changed"], result.get("msg")
    assert result["rabbitmq"]["healthy"], result["rabbitmq"]["problems"]
    assert sorted(result["rabbitmq"]["running_nodes"]) == nodes(controllers(inventory))
    assert main_pid(remote, target) != before[target]
    assert {name: main_pid(remote, name) for name in others} == {name: before[name] for name in others}
