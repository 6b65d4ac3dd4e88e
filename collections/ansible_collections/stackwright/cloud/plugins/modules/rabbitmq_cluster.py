# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rabbitmq_cluster
short_description: Report the health of a RabbitMQ cluster node, and restart it only when that is safe
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - Runs on a member of a RabbitMQ cluster as Stackwright deploys it (Debian packages, unit C(rabbitmq-server),
    node C(rabbit@<inventory_hostname>) named in C(/etc/rabbitmq/rabbitmq-env.conf)) and asks the local node
    with C(rabbitmqctl), C(rabbitmq-queues) and C(rabbitmq-upgrade).
  - O(state=status) reports the cluster as this node sees it, and never changes anything. It covers the members
    (disk and running), network partitions, memory and disk alarms, the cluster name, quorum queue leaders per
    node, and quorum queues and streams that have lost their majority, have members down, or would lose their
    majority if this node stopped.
  - O(state=restarted) restarts this node with C(systemctl restart), but refuses first when the cluster has a
    network partition or a resource alarm, when another member is not running, or when a quorum queue or stream
    would lose its majority while this node is away (C(rabbitmq-queues check_if_node_is_quorum_critical) and
    the module's own count of online members). Afterwards it waits for the node to boot
    (C(rabbitmqctl await_startup)), for every member that ran before to be running again, and for every quorum
    queue to have more than a bare majority online (C(rabbitmq-upgrade await_online_quorum_plus_one)), so that
    the next node of a rolling restart can follow.
  - A node whose unit is stopped or failed is started without those checks; a node that is down cannot take a
    majority away.
options:
  state:
    description:
      - V(status) reports the cluster and never changes anything.
      - V(restarted) restarts this node when that is safe.
    type: str
    choices: [status, restarted]
    default: status
  node:
    description:
      - The node to ask, passed to the CLI tools as C(-n).
      - By default the tools ask the local node that C(NODENAME) in C(/etc/rabbitmq/rabbitmq-env.conf) names, and
        the module uses that name to find this node in the cluster.
    type: str
  include_queues:
    description:
      - List the queues of every virtual host for the quorum figures of RV(rabbitmq.queues).
      - With V(false), O(state=restarted) still runs C(rabbitmq-queues check_if_node_is_quorum_critical).
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each step after a restart (boot, members running, quorum plus one).
    type: int
    default: 300
  service:
    description:
      - The systemd unit of the node.
    type: str
    default: rabbitmq-server
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: With O(state=restarted) the checks run and the task reports C(changed) without restarting.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs root (C(become)); the Debian wrappers of the CLI tools switch to the C(rabbitmq) user and its Erlang cookie.
  - The CLI tools read standard input, so the module gives them C(/dev/null) (with SSH pipelining stdin is the
    connection).
  - Restart one node at a time (C(throttle 1) or C(serial 1)). Each task returns only once its node serves again.
seealso:
  - name: RabbitMQ upgrade guide, rolling restarts
    description: The health checks that make a node safe to stop.
    link: https://www.rabbitmq.com/docs/upgrade
"""

EXAMPLES = r"""
- name: Report the RabbitMQ cluster as this node sees it
  stackwright.cloud.rabbitmq_cluster:
  become: true
  register: rabbitmq_status

- name: Fail when the cluster is not healthy
  ansible.builtin.assert:
    that: rabbitmq_status.rabbitmq.healthy
    fail_msg: "{{ rabbitmq_status.rabbitmq.problems | join('; ') }}"

# A rolling restart: one node at a time, each back in the cluster with its queues' quorum before the next.
- name: Restart the RabbitMQ nodes one at a time
  stackwright.cloud.rabbitmq_cluster:
    state: restarted
  become: true
  throttle: 1
"""

RETURN = r"""
rabbitmq:
  description:
    - The cluster as this node sees it; with O(state=restarted), after the restart.
  returned: always
  type: dict
  contains:
    node:
      description: This node's name.
      type: str
      sample: rabbit@ctl1
    service:
      description: The state of the unit, as C(systemctl is-active) prints it.
      type: str
      sample: active
    running:
      description: Whether RabbitMQ runs on this node and answered C(cluster_status).
      type: bool
      sample: true
    error:
      description: Why this node did not answer; null when it did.
      type: str
      sample: null
    cluster_name:
      description: The cluster name.
      type: str
      sample: stackwright
    disk_nodes:
      description: The cluster members (disk nodes).
      type: list
      elements: str
      sample: ["rabbit@ctl1", "rabbit@ctl2", "rabbit@ctl3"]
    running_nodes:
      description: The members that run.
      type: list
      elements: str
      sample: ["rabbit@ctl1", "rabbit@ctl2", "rabbit@ctl3"]
    stopped_nodes:
      description: The members that do not run.
      type: list
      elements: str
      sample: []
    nodes:
      description:
        - Per node, C(disk), C(running), C(maintenance) (C(not under maintenance) or C(marked for maintenance)),
          C(version) (RabbitMQ) and C(quorum_leaders) (quorum queues it leads; null when queues were not listed).
      type: dict
      sample:
        rabbit@ctl1: {disk: true, running: true, maintenance: not under maintenance, version: 4.0.5, quorum_leaders: 4}
    partitions:
      description: Per node, the nodes it cannot reach; empty when there is no partition.
      type: dict
      sample: {}
    alarms:
      description:
        - Resource alarms in the cluster, each with C(node) and C(resource) (C(memory), C(disk) or
          C(file_descriptors)).
      type: list
      elements: dict
      sample: [{"node": "rabbit@ctl2", "resource": "disk"}]
    queues:
      description: Quorum figures over all virtual hosts; null when O(include_queues) is V(false) or listing failed.
      type: dict
      contains:
        total:
          description: Queues of every type.
          type: int
        by_type:
          description: Queues per type.
          type: dict
          sample: {"quorum": 12, "classic": 30, "stream": 0}
        leaders_per_node:
          description: Quorum queues each node leads.
          type: dict
          sample: {"rabbit@ctl1": 4, "rabbit@ctl2": 4, "rabbit@ctl3": 4}
        without_quorum:
          description: Quorum queues and streams with fewer than a majority of their members online (unavailable).
          type: list
          elements: dict
          sample:
            - vhost: /
              name: q1
              type: quorum
              leader: ""
              members: ["rabbit@ctl1", "rabbit@ctl2", "rabbit@ctl3"]
              online: ["rabbit@ctl1"]
        members_down:
          description: Quorum queues and streams that keep their majority but have members offline.
          type: list
          elements: dict
        quorum_critical:
          description: Quorum queues and streams that would lose their majority if this node stopped.
          type: list
          elements: dict
    queues_error:
      description: Why the queues could not be listed; null otherwise.
      type: str
      sample: null
    healthy:
      description: No member down, no partition, no alarm, no queue without its majority or with members down.
      type: bool
      sample: true
    problems:
      description: What keeps RV(rabbitmq.healthy) false, one line each.
      type: list
      elements: str
      sample: ["rabbit@ctl3 is not running"]
msg:
  description: What was found, done, or would be done in check mode.
  returned: always
  type: str
  sample: "rabbit@ctl1 restarted and back in the cluster with 3 running nodes"
"""

import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stackwright.cloud.plugins.module_utils.files import tail
from ansible_collections.stackwright.cloud.plugins.module_utils.rabbitmq_accounts import parse_json_output
from ansible_collections.stackwright.cloud.plugins.module_utils.rabbitmq_cluster import (
    analyze_queues,
    find_problems,
    node_name_from_env,
    restart_refusals,
    summarize_cluster,
)

POLL_SECONDS = 5
ENV_FILE = "/etc/rabbitmq/rabbitmq-env.conf"
# The Debian package puts the CLI tools in /usr/sbin; a become PATH does not always hold it.
BIN_DIRS = ["/usr/sbin", "/usr/bin", "/usr/lib/rabbitmq/bin", "/sbin", "/bin"]


class RabbitNode:
    """This host's RabbitMQ node: what its CLI tools report, and the restart."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = self.params["node"] or node_name_from_env(self._read_env(), socket.gethostname().split(".")[0])

    def _read_env(self):
        try:
            with open(ENV_FILE, encoding="utf-8") as handle:
                return handle.read()
        except OSError:
            return ""

    def bin(self, name):
        return self.module.get_bin_path(name, required=True, opt_dirs=BIN_DIRS)

    def cli(self, tool, *args):
        argv = [self.bin(tool)]
        if self.params["node"]:
            argv += ["-n", self.params["node"]]
        return self.module.run_command([*argv, "-q", *args])

    def service_state(self):
        _rc, out, _err = self.module.run_command([self.bin("systemctl"), "is-active", self.params["service"]])
        return (out.strip().splitlines() or ["unknown"])[0]

    def cluster_status(self):
        rc, out, err = self.cli("rabbitmqctl", "cluster_status", "--formatter", "json")
        data = parse_json_output(out) if rc == 0 else None
        if not isinstance(data, dict):
            return None, tail(err or out, 5) or f"rabbitmqctl cluster_status exited with {rc}"
        return data, None

    def list_queues(self):
        rc, out, err = self.cli("rabbitmqctl", "list_vhosts", "name", "--formatter", "json")
        vhosts = parse_json_output(out) if rc == 0 else None
        if not isinstance(vhosts, list):
            return None, f"rabbitmqctl list_vhosts failed: {tail(err or out, 3)}"
        queues = []
        for vhost in sorted(item["name"] for item in vhosts if isinstance(item, dict) and "name" in item):
            rc, out, err = self.cli(
                "rabbitmqctl", "list_queues", "-p", vhost, "name", "type", "leader", "members", "online",
                "--formatter", "json",
            )  # fmt: skip
            rows = parse_json_output(out) if rc == 0 else None
            if not isinstance(rows, list):
                return None, f"rabbitmqctl list_queues -p {vhost} failed: {tail(err or out, 3)}"
            queues.extend(dict(row, vhost=vhost) for row in rows if isinstance(row, dict))
        return queues, None

    def quorum_critical(self):
        """(queues, error): what check_if_node_is_quorum_critical lists; it exits non-zero when there are some."""
        rc, out, err = self.cli("rabbitmq-queues", "check_if_node_is_quorum_critical", "--formatter", "json")
        if rc == 0:
            return [], None
        for text in (out, err):
            data = parse_json_output(text)
            if isinstance(data, dict) and isinstance(data.get("queues"), list):
                return data["queues"], None
        return None, tail(err or out, 5) or f"exit {rc}"

    def status(self):
        service = self.service_state()
        status = {"node": self.name, "service": service, "running": False, "error": None}
        for key in ("cluster_name", "disk_nodes", "running_nodes", "stopped_nodes", "nodes", "partitions", "alarms"):
            status[key] = None
        status.update(queues=None, queues_error=None)
        if service != "active":
            status["error"] = f"the unit {self.params['service']} is {service}"
        else:
            cluster, status["error"] = self.cluster_status()
            if cluster is not None:
                status["running"] = True
                queues = None
                if self.params["include_queues"]:
                    rows, status["queues_error"] = self.list_queues()
                    if rows is not None:
                        queues = analyze_queues(rows, self.name)
                status.update(summarize_cluster(cluster, queues))
                status["queues"] = queues
        problems = find_problems(status) if status["running"] else [f"{self.name} is not running: {status['error']}"]
        status["problems"] = problems
        if status["queues_error"]:
            status["problems"].append(f"queues not checked: {status['queues_error']}")
        status["healthy"] = not status["problems"]
        return status

    def restart_and_wait(self, expected_running, await_quorum=True):
        rc, out, err = self.module.run_command([self.bin("systemctl"), "restart", self.params["service"]])
        if rc != 0:
            self.module.fail_json(
                msg=f"systemctl restart {self.params['service']} failed (exit {rc}): {tail(err or out, 5)}. See "
                f"journalctl -u {self.params['service']}.",
                changed=True,
            )
        timeout = str(self.params["timeout"])
        rc, out, err = self.cli("rabbitmqctl", "await_startup", "--timeout", timeout)
        if rc != 0:
            self.module.fail_json(
                msg=f"{self.name} did not finish booting within {timeout} s after the restart: {tail(err or out, 5)}. "
                f"See journalctl -u {self.params['service']} and /var/log/rabbitmq.",
                changed=True,
            )
        expected = set(expected_running) | {self.name}
        attempts = max(1, self.params["timeout"] // POLL_SECONDS)
        missing = sorted(expected)
        for attempt in range(attempts):
            cluster, _error = self.cluster_status()
            if cluster is not None:
                missing = sorted(expected - set(cluster.get("running_nodes") or []))
                if not missing:
                    break
            if attempt + 1 < attempts:
                time.sleep(POLL_SECONDS)
        else:
            self.module.fail_json(
                msg=f"{self.name} restarted, but after {timeout} s {', '.join(missing)} still not run(s) in its "
                "cluster: check rabbitmqctl cluster_status before restarting anything else.",
                changed=True,
            )
        if not await_quorum:
            return
        rc, out, err = self.cli("rabbitmq-upgrade", "await_online_quorum_plus_one", "--timeout", timeout)
        if rc != 0:
            self.module.fail_json(
                msg=f"{self.name} restarted and rejoined, but its quorum queues did not get more than a bare "
                f"majority online within {timeout} s: {tail(err or out, 5)}. Do not restart the next node yet; "
                "see rabbitmq-queues check_if_node_is_quorum_critical.",
                changed=True,
            )


def restart(node):
    module = node.module
    before = node.status()
    if before["service"] in ("inactive", "failed"):
        if module.check_mode:
            module.exit_json(
                changed=True, rabbitmq=before, msg=f"Would start {node.name} (its unit is {before['service']})."
            )
        # A node started alone after an outage cannot see quorum plus one until its peers are back.
        node.restart_and_wait([], await_quorum=False)
        after = node.status()
        module.exit_json(changed=True, rabbitmq=after, msg=f"{node.name} started and running in its cluster.")
    if not before["running"]:
        module.fail_json(
            msg=f"Refusing to restart {node.name}: its unit is {before['service']} but the node does not answer "
            f"({before['error']}). It may be booting, waiting for its peers, or paused by pause_minority: look at "
            "rabbitmq-diagnostics status and journalctl -u rabbitmq-server, and restart it by hand if it is stuck. "
            "Nothing was restarted.",
            rabbitmq=before,
        )
    critical, error = node.quorum_critical()
    refusals = restart_refusals(before, critical or [])
    if error:
        refusals.append(f"rabbitmq-queues check_if_node_is_quorum_critical failed ({error}): find out why first")
    if refusals:
        module.fail_json(
            msg=f"Refusing to restart {node.name}: " + "; ".join(refusals) + ". Nothing was restarted.",
            rabbitmq=before,
        )
    if module.check_mode:
        module.exit_json(changed=True, rabbitmq=before, msg=f"Would restart {node.name}; the cluster allows it.")
    node.restart_and_wait(before["running_nodes"])
    after = node.status()
    module.exit_json(
        changed=True,
        rabbitmq=after,
        msg=f"{node.name} restarted and back in the cluster with {len(after['running_nodes'] or [])} running nodes",
    )


def detach_stdin():
    """Give the CLI tools /dev/null as stdin: they read it, and under SSH pipelining it is the connection."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["status", "restarted"], "default": "status"},
            "node": {"type": "str"},
            "include_queues": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 300},
            "service": {"type": "str", "default": "rabbitmq-server"},
        },
        supports_check_mode=True,
    )
    detach_stdin()
    node = RabbitNode(module)
    if module.params["state"] == "restarted":
        restart(node)
    status = node.status()
    summary = f"{node.name}: healthy" if status["healthy"] else "; ".join(status["problems"])
    module.exit_json(changed=False, rabbitmq=status, msg=summary)


if __name__ == "__main__":
    main()
