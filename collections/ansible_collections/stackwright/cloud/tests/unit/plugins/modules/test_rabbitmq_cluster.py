# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.rabbitmq_cluster against a simulated RabbitMQ 4.0 node (its CLI tools and systemctl)."""

import copy
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import rabbitmq_cluster
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module

CTL1, CTL2, CTL3 = "rabbit@ctl1", "rabbit@ctl2", "rabbit@ctl3"
ALL = [CTL1, CTL2, CTL3]


def cluster_status(running=tuple(ALL), partitions=None, alarms=None):
    """rabbitmqctl -q cluster_status --formatter json of RabbitMQ 4.0 (Mnesia metadata store)."""
    return {
        "alarms": alarms or [],
        "cluster_name": "stackwright",
        "cpu_cores": {node: 2 for node in running},
        "disk_nodes": list(ALL),
        "feature_flags": [
            {"desired_state": "enabled", "doc_url": "", "name": "quorum_queue", "provided_by": "rabbit",
             "stability": "required", "state": "enabled"},
            {"desired_state": "disabled", "doc_url": "", "name": "khepri_db", "provided_by": "rabbit",
             "stability": "experimental", "state": "disabled"},
        ],
        "listeners": {
            node: [
                {"interface": f"10.89.82.1{node[-1]}", "node": node, "port": 25672, "protocol": "clustering",
                 "purpose": "inter-node and CLI tool communication"},
                {"interface": f"10.89.82.1{node[-1]}", "node": node, "port": 5671, "protocol": "amqp/ssl",
                 "purpose": "AMQP 0-9-1 and AMQP 1.0 over TLS"},
            ]
            for node in running
        },
        "maintenance_status": {node: "not under maintenance" for node in running},
        "partitions": partitions or {},
        "ram_nodes": [],
        "running_nodes": list(reversed(running)),
        "versions": {
            node: {"erlang_version": "27.3.4.1", "rabbitmq_name": "RabbitMQ", "rabbitmq_version": "4.0.5"}
            for node in running
        },
    }  # fmt: skip


def quorum_queue(name, leader, members=tuple(ALL), online=None):
    return {"name": name, "type": "quorum", "leader": leader, "members": list(members),
            "online": list(members if online is None else online)}  # fmt: skip


def classic_queue(name):
    # Classic queues have no replicas; RabbitMQ 4.0 prints empty values for the quorum columns.
    return {"name": name, "type": "classic", "leader": "", "members": "", "online": ""}


QUEUES = {
    "/": [
        quorum_queue("keystone.notifications.info", CTL1),
        quorum_queue("glance.notifications.info", CTL2),
        classic_queue("reply_6a1f3c0e9b2d4e47a3f1c2d5e6f70819"),
    ],
    "/nova": [
        quorum_queue("scheduler", CTL2),
        quorum_queue("conductor", CTL3),
        quorum_queue("compute", CTL1),
    ],
}

CRITICAL_OUTPUT = {
    "result": "error",
    "queues": [
        {"name": "scheduler", "readable_name": "queue 'scheduler' in vhost '/nova'", "type": "rabbit_quorum_queue",
         "virtual_host": "/nova"},
    ],
    "message": "Node rabbit@ctl1 reported local queues with minimum online quorum",
}  # fmt: skip

NODE_DOWN_ERROR = """\
Error: unable to perform an operation on node 'rabbit@ctl1'. Please see diagnostics information and suggestions below.

Most common reasons for this are:

 * Target node is unreachable (e.g. due to hostname resolution, TCP connection or firewall issues)
 * CLI tool fails to authenticate with the server (e.g. due to CLI tool's Erlang cookie not matching that of the server)
 * Target node is not running
"""


class RabbitHost:
    """Answers the module's commands like a Debian 13 controller running rabbit@ctl1."""

    def __init__(self):
        self.service = "active"
        self.answering = True
        self.cluster = cluster_status()
        self.queues = copy.deepcopy(QUEUES)
        self.critical = None  # (rc, stdout, stderr) of check_if_node_is_quorum_critical
        self.restart_rc = 0
        self.await_startup_rc = 0
        self.await_quorum_rc = 0
        self.rejoin_after_polls = 0
        self.restarted = False
        self.calls = []

    def run_command(self, argv, **kwargs):
        assert isinstance(argv, list), "commands are argv lists"
        assert "data" not in kwargs
        self.calls.append(argv)
        tool, args = os.path.basename(argv[0]), argv[1:]
        if tool == "systemctl":
            if args[0] == "is-active":
                return (0 if self.service == "active" else 3), self.service + "\n", ""
            assert args == ["restart", "rabbitmq-server"]
            if self.restart_rc:
                return self.restart_rc, "", "Job for rabbitmq-server.service failed.\n"
            self.service, self.answering, self.restarted = "active", True, True
            return 0, "", ""
        if args[0] == "-n":
            assert args[1] == CTL1
            args = args[2:]
        assert args[0] == "-q", "CLI output must be quiet to be parsed"
        command = args[1]
        if not self.answering:
            return 69, "", NODE_DOWN_ERROR
        if command == "cluster_status":
            if self.restarted and self.rejoin_after_polls:
                self.rejoin_after_polls -= 1
                return 0, json.dumps(cluster_status(running=[CTL1])), ""
            return 0, json.dumps(self.cluster), ""
        if command == "list_vhosts":
            return 0, json.dumps([{"name": name} for name in self.queues]), ""
        if command == "list_queues":
            assert args[2] == "-p" and args[4:9] == ["name", "type", "leader", "members", "online"]
            return 0, json.dumps(self.queues[args[3]]), ""
        if command == "check_if_node_is_quorum_critical":
            assert args[2:] == ["--formatter", "json"]
            return self.critical or (0, json.dumps({"result": "ok"}), "")
        if command == "await_startup":
            return self.await_startup_rc, "", "" if not self.await_startup_rc else "Error: timed out\n"
        if command == "await_online_quorum_plus_one":
            return self.await_quorum_rc, "", "" if not self.await_quorum_rc else "Error: timed out\n"
        raise AssertionError(f"unexpected command {argv}")

    def ran(self, *words):
        return [argv for argv in self.calls if all(word in argv or word == os.path.basename(argv[0]) for word in words)]


@pytest.fixture
def host(monkeypatch):
    fake = RabbitHost()

    patch_module(monkeypatch, fake, bin_dir="/usr/sbin")
    monkeypatch.setattr(rabbitmq_cluster.time, "sleep", lambda _seconds: None)
    fake.stdin_detached = 0

    def detach():
        fake.stdin_detached += 1

    monkeypatch.setattr(rabbitmq_cluster, "detach_stdin", detach)
    monkeypatch.setattr(rabbitmq_cluster, "ENV_FILE", "/nonexistent/rabbitmq-env.conf")
    monkeypatch.setattr(rabbitmq_cluster.socket, "gethostname", lambda: "ctl1.example.org")
    return fake


def run_module(**args):
    with patch_module_args(args), pytest.raises(Exited) as caught:
        rabbitmq_cluster.main()
    return caught.value.result


def refused(host, **args):
    with patch_module_args({"state": "restarted", **args}), pytest.raises(Failed) as caught:
        rabbitmq_cluster.main()
    assert host.ran("systemctl", "restart") == [], "a refusal restarts nothing"
    assert caught.value.result["msg"].startswith("Refusing to restart rabbit@ctl1: ")
    return caught.value.result["msg"]


# --- state: status ---------------------------------------------------------------------------------------------------


def test_status_of_a_healthy_cluster(host):
    result = run_module()
    status = result["rabbitmq"]
    assert result["changed"] is False
    assert host.stdin_detached == 1
    assert status["node"] == CTL1
    assert status["running"] is True
    assert status["cluster_name"] == "stackwright"
    assert status["disk_nodes"] == ALL
    assert status["running_nodes"] == ALL
    assert status["stopped_nodes"] == []
    assert status["partitions"] == {}
    assert status["alarms"] == []
    assert status["nodes"][CTL2] == {"disk": True, "running": True, "maintenance": "not under maintenance",
                                     "version": "4.0.5", "quorum_leaders": 2}  # fmt: skip
    queues = status["queues"]
    assert queues["total"] == 6
    assert queues["by_type"] == {"quorum": 5, "classic": 1}
    assert queues["leaders_per_node"] == {CTL1: 2, CTL2: 2, CTL3: 1}
    assert queues["without_quorum"] == queues["members_down"] == queues["quorum_critical"] == []
    assert status["healthy"] is True
    assert status["problems"] == []
    assert result["msg"] == "rabbit@ctl1: healthy"


def test_status_asks_every_vhost_with_json_output(host):
    run_module()
    assert ["/usr/sbin/rabbitmqctl", "-q", "cluster_status", "--formatter", "json"] in host.calls
    assert [argv[4] for argv in host.ran("list_queues")] == ["/", "/nova"]
    assert all(argv[-2:] == ["--formatter", "json"] for argv in host.calls if "rabbitmqctl" in argv[0])


def test_status_with_a_member_down(host):
    host.cluster = cluster_status(running=[CTL1, CTL2])
    host.queues["/nova"] = [
        quorum_queue("conductor", CTL1, online=[CTL1, CTL2]),
        quorum_queue("scheduler", CTL2, members=[CTL2, CTL3], online=[CTL2]),
    ]
    status = run_module()["rabbitmq"]
    assert status["stopped_nodes"] == [CTL3]
    assert status["nodes"][CTL3] == {"disk": True, "running": False, "maintenance": None, "version": None,
                                     "quorum_leaders": 0}  # fmt: skip
    assert [q["name"] for q in status["queues"]["members_down"]] == ["conductor"]
    assert status["queues"]["without_quorum"] == [
        {"vhost": "/nova", "name": "scheduler", "type": "quorum", "leader": CTL2, "members": [CTL2, CTL3],
         "online": [CTL2]}
    ]  # fmt: skip
    assert [q["name"] for q in status["queues"]["quorum_critical"]] == ["conductor"]
    assert status["healthy"] is False
    assert status["problems"] == [
        "rabbit@ctl3 is not running",
        "queues without a majority online: 'scheduler' in vhost '/nova'",
        "queues with members down: 'conductor' in vhost '/nova'",
    ]


def test_status_reports_partitions_and_alarms(host):
    host.cluster = cluster_status(
        partitions={CTL1: [CTL3], CTL2: []},
        alarms=[{"node": CTL2, "resource": "disk", "type": "resource_limit"},
                {"node": CTL1, "resource": "memory", "type": "resource_limit"}],
    )  # fmt: skip
    status = run_module()["rabbitmq"]
    assert status["partitions"] == {CTL1: [CTL3]}
    assert status["alarms"] == [{"node": CTL2, "resource": "disk"}, {"node": CTL1, "resource": "memory"}]
    assert status["problems"] == [
        "network partition: rabbit@ctl1 cannot reach rabbit@ctl3",
        "disk alarm on rabbit@ctl2",
        "memory alarm on rabbit@ctl1",
    ]


def test_status_of_a_stopped_unit_asks_no_cli_tool(host):
    host.service = "inactive"
    result = run_module()
    assert result["changed"] is False
    assert result["rabbitmq"]["running"] is False
    assert result["rabbitmq"]["error"] == "the unit rabbitmq-server is inactive"
    assert result["rabbitmq"]["healthy"] is False
    assert [os.path.basename(argv[0]) for argv in host.calls] == ["systemctl"]


def test_status_of_a_node_that_does_not_answer(host):
    host.answering = False
    status = run_module()["rabbitmq"]
    assert status["running"] is False
    assert "Target node is not running" in status["error"]
    assert status["queues"] is None


def test_status_without_queues(host):
    status = run_module(include_queues=False)["rabbitmq"]
    assert host.ran("list_queues") == []
    assert status["queues"] is None
    assert status["nodes"][CTL1]["quorum_leaders"] is None
    assert status["healthy"] is True


def test_a_named_node_is_passed_to_every_cli_call(host):
    status = run_module(node="rabbit@ctl1")["rabbitmq"]
    cli_calls = [argv for argv in host.calls if "systemctl" not in argv[0]]
    assert cli_calls and all(argv[1:3] == ["-n", "rabbit@ctl1"] for argv in cli_calls)
    assert status["node"] == CTL1


# --- state: restarted ------------------------------------------------------------------------------------------------


def test_restart_of_a_healthy_node(host):
    result = run_module(state="restarted")
    assert result["changed"] is True
    assert result["msg"] == "rabbit@ctl1 restarted and back in the cluster with 3 running nodes"
    commands = [" ".join(argv[2:4]) if "systemctl" not in argv[0] else " ".join(argv[1:]) for argv in host.calls]
    restart = commands.index("restart rabbitmq-server")
    assert "check_if_node_is_quorum_critical --formatter" in commands[:restart]
    assert commands[restart + 1 :][:2] == ["await_startup --timeout", "cluster_status --formatter"]
    assert "await_online_quorum_plus_one --timeout" in commands[restart + 1 :]
    assert host.ran("await_startup") == [["/usr/sbin/rabbitmqctl", "-q", "await_startup", "--timeout", "300"]]
    assert result["rabbitmq"]["healthy"] is True


def test_check_mode_checks_and_does_not_restart(host):
    result = run_module(state="restarted", _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["msg"] == "Would restart rabbit@ctl1; the cluster allows it."
    assert host.ran("check_if_node_is_quorum_critical")
    assert host.ran("systemctl", "restart") == []


def test_check_mode_still_refuses(host):
    host.cluster = cluster_status(partitions={CTL1: [CTL2]})
    assert "network partition" in refused(host, _ansible_check_mode=True)


def test_refuses_with_a_partition(host):
    host.cluster = cluster_status(partitions={CTL2: [CTL3], CTL3: [CTL2]})
    msg = refused(host)
    assert "network partition (rabbit@ctl2 cannot reach rabbit@ctl3; rabbit@ctl3 cannot reach rabbit@ctl2)" in msg
    assert msg.endswith("Nothing was restarted.")


def test_refuses_with_an_alarm(host):
    host.cluster = cluster_status(alarms=[{"node": CTL3, "resource": "memory", "type": "resource_limit"}])
    assert "resource alarms are raised (memory on rabbit@ctl3)" in refused(host)


def test_refuses_while_another_member_is_down(host):
    host.cluster = cluster_status(running=[CTL1, CTL2])
    assert "rabbit@ctl3 is not running: with another member down" in refused(host, include_queues=False)


def test_refuses_when_a_quorum_queue_would_lose_its_majority(host):
    # A queue with two replicas, both online: either one going down leaves it without a majority.
    host.queues["/"].append(quorum_queue("heat-engine", CTL2, members=[CTL1, CTL2]))
    msg = refused(host)
    assert "1 quorum queue(s) or stream(s) would lose their majority while rabbit@ctl1 is down" in msg
    assert "'heat-engine' in vhost '/'" in msg


def test_a_queue_without_a_replica_here_does_not_block(host):
    host.queues["/"].append(quorum_queue("heat-engine", CTL2, members=[CTL2, CTL3]))
    assert run_module(state="restarted")["changed"] is True


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_refuses_when_rabbitmq_reports_the_node_quorum_critical(host, stream):
    output = json.dumps(CRITICAL_OUTPUT)
    host.critical = (69, output, "") if stream == "stdout" else (69, "", output)
    msg = refused(host, include_queues=False)
    assert "would lose their majority while rabbit@ctl1 is down ('scheduler' in vhost '/nova')" in msg


def test_refuses_when_the_quorum_check_itself_fails(host):
    host.critical = (70, "", "Error:\n{:undef, [{:rabbit_quorum_queue, :list_with_minimum_quorum_for_cli, [], []}]}")
    assert "check_if_node_is_quorum_critical failed" in refused(host)


def test_refuses_a_node_that_runs_but_does_not_answer(host):
    host.answering = False
    msg = refused(host)
    assert "its unit is active but the node does not answer" in msg
    assert "pause_minority" in msg


def test_a_stopped_node_is_started_without_the_cluster_checks(host):
    host.service = "failed"
    result = run_module(state="restarted")
    assert result["changed"] is True
    assert result["msg"] == "rabbit@ctl1 started and running in its cluster."
    assert host.ran("systemctl", "restart") == [["/usr/sbin/systemctl", "restart", "rabbitmq-server"]]
    assert host.ran("check_if_node_is_quorum_critical") == []
    assert host.ran("await_online_quorum_plus_one") == []


def test_check_mode_on_a_stopped_node(host):
    host.service = "inactive"
    result = run_module(state="restarted", _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["msg"] == "Would start rabbit@ctl1 (its unit is inactive)."
    assert host.ran("systemctl", "restart") == []


def test_waits_until_the_other_members_see_the_node_again(host):
    host.rejoin_after_polls = 3
    result = run_module(state="restarted")
    assert result["changed"] is True
    restart = host.calls.index(["/usr/sbin/systemctl", "restart", "rabbitmq-server"])
    polls = [argv for argv in host.calls[restart:] if "cluster_status" in argv]
    # 3 answers with only this node, 1 with all, then the final status.
    assert len(polls) == 5


def test_gives_up_when_the_node_does_not_rejoin(host):
    host.rejoin_after_polls = 1000
    with patch_module_args({"state": "restarted", "timeout": 30}), pytest.raises(Failed) as caught:
        rabbitmq_cluster.main()
    result = caught.value.result
    assert result["changed"] is True
    assert "after 30 s rabbit@ctl2, rabbit@ctl3 still not run(s)" in result["msg"]
    restart = host.calls.index(["/usr/sbin/systemctl", "restart", "rabbitmq-server"])
    assert (
        len([argv for argv in host.calls[restart:] if "cluster_status" in argv]) == 30 // rabbitmq_cluster.POLL_SECONDS
    )
    assert host.ran("await_online_quorum_plus_one") == []


def test_a_failed_restart_fails_the_task(host):
    host.restart_rc = 1
    with patch_module_args({"state": "restarted"}), pytest.raises(Failed) as caught:
        rabbitmq_cluster.main()
    assert caught.value.result["changed"] is True
    assert "systemctl restart rabbitmq-server failed (exit 1)" in caught.value.result["msg"]


def test_a_node_that_does_not_boot_fails_the_task(host):
    host.await_startup_rc = 69
    with patch_module_args({"state": "restarted"}), pytest.raises(Failed) as caught:
        rabbitmq_cluster.main()
    assert "did not finish booting within 300 s" in caught.value.result["msg"]


def test_quorum_plus_one_not_reached_fails_the_task(host):
    host.await_quorum_rc = 69
    with patch_module_args({"state": "restarted"}), pytest.raises(Failed) as caught:
        rabbitmq_cluster.main()
    assert caught.value.result["changed"] is True
    assert "Do not restart the next node yet" in caught.value.result["msg"]
