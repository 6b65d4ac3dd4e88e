# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The pure analysis of stackwright.cloud.rabbitmq_cluster (module_utils/rabbitmq_cluster.py); the module's tests run
it through the module against a fake rabbitmqctl."""

import pytest
from ansible_collections.stackwright.cloud.plugins.module_utils.rabbitmq_accounts import parse_json_output
from ansible_collections.stackwright.cloud.plugins.module_utils.rabbitmq_cluster import (
    analyze_queues,
    find_problems,
    node_name_from_env,
    restart_refusals,
)

NODES = ["rabbit@ctl1", "rabbit@ctl2", "rabbit@ctl3"]


def quorum_queue(name, online, leader="rabbit@ctl1", vhost="/nova"):
    return {"vhost": vhost, "name": name, "type": "quorum", "leader": leader, "members": NODES, "online": online}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NODENAME=rabbit@ctl2\nUSE_LONGNAME=false\n", "rabbit@ctl2"),
        ("# NODENAME=rabbit@old\nRABBITMQ_NODENAME='hare'\n", "hare@ctl1"),
        ("", "rabbit@ctl1"),
    ],
)
def test_node_name_from_rabbitmq_env_conf(text, expected):
    assert node_name_from_env(text, "ctl1") == expected


def test_json_after_a_warning_is_found():
    text = 'warning: the VM is running with native name encoding of latin1\n{"result": "ok"}\n'
    assert parse_json_output(text) == {"result": "ok"}
    assert parse_json_output("Error: timed out") is None


def test_queues_are_judged_by_the_majority_of_their_members():
    queues = [
        quorum_queue("all-up", NODES),
        quorum_queue("one-down", NODES[:2]),
        quorum_queue("two-down", NODES[:1]),
        {"vhost": "/nova", "name": "classic", "type": "classic"},
    ]
    figures = analyze_queues(queues, "rabbit@ctl1")
    assert figures["total"] == 4
    assert figures["by_type"] == {"quorum": 3, "classic": 1}
    assert figures["leaders_per_node"] == {"rabbit@ctl1": 3}
    assert [q["name"] for q in figures["without_quorum"]] == ["two-down"]
    assert [q["name"] for q in figures["members_down"]] == ["one-down"]
    # Down to exactly a majority with ctl1 among them: restarting ctl1 loses it.
    assert [q["name"] for q in figures["quorum_critical"]] == ["one-down"]


def test_a_healthy_cluster_has_no_problems_and_may_restart_a_node():
    status = {"node": "rabbit@ctl1", "stopped_nodes": [], "partitions": {}, "alarms": [],
              "queues": analyze_queues([quorum_queue("all-up", NODES)], "rabbit@ctl1")}  # fmt: skip
    assert find_problems(status) == []
    assert restart_refusals(status, []) == []


def test_each_unsafe_state_refuses_a_restart_with_its_own_reason():
    status = {
        "node": "rabbit@ctl1",
        "stopped_nodes": ["rabbit@ctl3"],
        "partitions": {"rabbit@ctl2": ["rabbit@ctl3"]},
        "alarms": [{"node": "rabbit@ctl2", "resource": "memory"}],
        "queues": analyze_queues([quorum_queue("one-down", NODES[:2])], "rabbit@ctl1"),
    }
    problems = find_problems(status)
    assert "rabbit@ctl3 is not running" in problems
    assert "network partition: rabbit@ctl2 cannot reach rabbit@ctl3" in problems
    assert "memory alarm on rabbit@ctl2" in problems
    refusals = restart_refusals(status, [{"virtual_host": "/cinder", "name": "from-cli"}])
    assert len(refusals) == 4
    assert "network partition" in refusals[0]
    assert "resource alarms" in refusals[1]
    assert "rabbit@ctl3 is not running" in refusals[2]
    assert "2 quorum queue(s)" in refusals[3] and "'from-cli' in vhost '/cinder'" in refusals[3]
