# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: galera_cluster
short_description: Report the state of a MariaDB Galera node, and bootstrap a fully stopped cluster from the right node
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - Runs on a member of a MariaDB Galera cluster as Stackwright deploys it (Debian packages, unit C(mariadb),
    root over the unix socket, data in C(/var/lib/mysql)).
  - >-
    O(state=status) reports this node: whether the server runs, its C(wsrep_*) status, the C(uuid), C(seqno)
    and C(safe_to_bootstrap) of C(grastate.dat) and, with O(recover_position=true), the position that
    C(mariadbd --wsrep-recover) finds when the server is stopped and C(grastate.dat) says C(seqno: -1). It never
    changes anything.
  - >-
    O(state=bootstrapped) recovers a cluster after a full outage. One node cannot see the others, so the task
    takes the status of every member (O(cluster_status), gathered with O(state=status) first) and every host
    of the play comes to the same decision. It refuses when any member still runs or is Primary, when the
    members disagree on the cluster uuid, when a position is unknown, when a configured member is missing
    from O(cluster_status), or when two nodes tie for the highest seqno and none is the only one with
    C(safe_to_bootstrap: 1). Otherwise it picks the only node with C(safe_to_bootstrap: 1) (the last to leave
    a cleanly stopped cluster), else the one with the highest seqno.
  - >-
    On the chosen node it sets C(safe_to_bootstrap: 1) in C(grastate.dat) if needed, runs C(galera_new_cluster)
    and waits until the node is in a Primary component. On the other nodes it changes nothing and returns
    RV(bootstrap_host); start them afterwards one at a time.
options:
  state:
    description:
      - V(status) reports this node and never changes anything.
      - V(bootstrapped) bootstraps the cluster from the node the rules choose, if that is this node.
    type: str
    choices: [status, bootstrapped]
    default: status
  node_name:
    description:
      - Name of this member in RV(galera.node_name) and in O(cluster_status). Use the same value in both
        states, normally C({{ inventory_hostname }}).
      - Defaults to the short host name of the machine.
    type: str
  recover_position:
    description:
      - >-
        With O(state=status), when the server is stopped and C(grastate.dat) has no position (C(seqno: -1) after
        a crash), run C(mariadbd --user=mysql --wsrep-recover) to find it. The server binary starts for a moment,
        recovers InnoDB as the next start would, prints the position and exits.
      - Also runs in check mode, because a bootstrap decision needs the positions.
    type: bool
    default: false
  cluster_status:
    description:
      - With O(state=bootstrapped), the RV(galera) result of O(state=status) from every member of the cluster,
        this node included (see the examples for how to collect it from C(hostvars)).
      - Every member that C(wsrep_cluster_address) names must be in it, or the task refuses (a member that was
        not asked may hold newer data) unless O(bootstrap_host) names the node explicitly.
      - >-
        Gather it right before: on the chosen node the task refuses when C(grastate.dat) or the service has
        changed since.
    type: list
    elements: dict
  bootstrap_host:
    description:
      - The operator's explicit choice of the node to bootstrap, by O(node_name). Needed when several nodes tie
        for the highest seqno, when a member is missing from O(cluster_status) (lost for good), or when
        C(safe_to_bootstrap) and the seqnos contradict each other.
      - The task still refuses a node whose seqno is lower than another's, a running cluster, disagreeing
        uuids and unknown positions.
    type: str
  timeout:
    description:
      - Seconds to wait, after C(galera_new_cluster), for the node to be in a Primary component.
    type: int
    default: 300
  service:
    description:
      - The systemd unit of the server.
    type: str
    default: mariadb
  datadir:
    description:
      - The data directory, which holds C(grastate.dat).
    type: path
    default: /var/lib/mysql
  login_unix_socket:
    description:
      - The server's unix socket; the module logs in as C(root) through it (unix_socket authentication).
    type: path
    default: /run/mysqld/mysqld.sock
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: With O(state=bootstrapped) the chosen node reports C(changed) and what it would do, and does nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs root (C(become)) to read C(grastate.dat), log in as root and run C(mariadbd --wsrep-recover).
  - A C(mariadbd) started outside systemd is not seen as running.
  - The manual procedure the module automates is in C(roles/mariadb/README.md) of Stackwright.
seealso:
  - name: Galera Cluster documentation, crash recovery
    description: Why the node to bootstrap must be the most advanced one.
    link: https://galeracluster.com/library/documentation/crash-recovery.html
"""

EXAMPLES = r"""
- name: Report the Galera state of this member
  stackwright.cloud.galera_cluster:
    node_name: "{{ inventory_hostname }}"
  become: true
  register: galera_status

# Recovery after a full outage (every mariadb stopped or crashed), in a play over all members with become: gather
# every member's position, let the module choose the node to bootstrap, then start the others one at a time.
- name: Gather the state of every member, recovering the positions that crashes left unknown
  stackwright.cloud.galera_cluster:
    node_name: "{{ inventory_hostname }}"
    recover_position: true
  register: galera_status

- name: Bootstrap the cluster from the most advanced member
  stackwright.cloud.galera_cluster:
    state: bootstrapped
    node_name: "{{ inventory_hostname }}"
    cluster_status: "{{ ansible_play_hosts_all | map('extract', hostvars, ['galera_status', 'galera']) | list }}"
  register: galera_bootstrap
  # One refusal stops every host: nothing starts on a guess.
  any_errors_fatal: true

- name: Start the other members one at a time
  ansible.builtin.systemd_service:
    name: mariadb
    state: started
  throttle: 1
  when: inventory_hostname != galera_bootstrap.bootstrap_host

- name: Wait until every member is Synced
  stackwright.cloud.galera_cluster:
    node_name: "{{ inventory_hostname }}"
  register: galera_after
  until: galera_after.galera.wsrep_local_state_comment == 'Synced'
  retries: 90
  delay: 10

# Several nodes share the highest seqno (a power loss stops them all at once): any of them will do, but the
# operator names it.
- name: Bootstrap from a named node
  stackwright.cloud.galera_cluster:
    state: bootstrapped
    node_name: "{{ inventory_hostname }}"
    cluster_status: "{{ ansible_play_hosts_all | map('extract', hostvars, ['galera_status', 'galera']) | list }}"
    bootstrap_host: ctl1
"""

RETURN = r"""
galera:
  description:
    - The state of this node; with O(state=bootstrapped), read after the bootstrap.
    - Pass these dicts, one per member, as O(cluster_status).
  returned: always
  type: dict
  contains:
    node_name:
      description: O(node_name).
      type: str
      sample: ctl1
    service:
      description: The state of the unit, as C(systemctl is-active) prints it.
      type: str
      sample: inactive
    running:
      description: Whether a server process runs or is starting or stopping (the unit is not inactive or failed).
      type: bool
      sample: false
    wsrep_on:
      description: Whether Galera replication is on (the server's C(wsrep_on), or the configuration's when stopped).
      type: bool
      sample: true
    wsrep_cluster_size:
      description: Members in this node's component; null when the server does not answer.
      type: int
      sample: 3
    wsrep_cluster_status:
      description: C(Primary), C(non-Primary) or C(Disconnected); null when the server does not answer.
      type: str
      sample: Primary
    wsrep_local_state_comment:
      description: C(Synced), C(Donor/Desynced), C(Joining), C(Joined) and so on; null when the server does not answer.
      type: str
      sample: Synced
    wsrep_local_state:
      description: The numeric local state (4 is Synced).
      type: int
      sample: 4
    wsrep_ready:
      description: Whether the node accepts queries.
      type: bool
      sample: true
    wsrep_connected:
      description: Whether the node is connected to the group.
      type: bool
      sample: true
    wsrep_cluster_state_uuid:
      description: The cluster uuid the running node is in.
      type: str
      sample: 6b2a7c1e-0f5d-11f0-9a55-0e8e3b2d4c11
    wsrep_last_committed:
      description: The seqno of the last transaction the running node committed.
      type: int
      sample: 18342
    query_error:
      description: Why the server did not answer although its unit is active; null otherwise.
      type: str
      sample: null
    grastate:
      description: The fields of C(grastate.dat).
      type: dict
      contains:
        present:
          description: Whether the file exists.
          type: bool
        version:
          description: Format version of the file.
          type: str
          sample: "2.1"
        uuid:
          description: The cluster uuid.
          type: str
          sample: 6b2a7c1e-0f5d-11f0-9a55-0e8e3b2d4c11
        seqno:
          description: The saved seqno; -1 while the server runs and after a crash.
          type: int
          sample: -1
        safe_to_bootstrap:
          description: Whether Galera marked this node as the last one to leave the cluster.
          type: bool
          sample: false
    recovered:
      description: The position C(mariadbd --wsrep-recover) printed (O(recover_position)); null when it did not run.
      type: dict
      sample: {"uuid": "6b2a7c1e-0f5d-11f0-9a55-0e8e3b2d4c11", "seqno": 18342}
    recover_error:
      description: Why the position could not be recovered; null when it was or when recovery did not run.
      type: str
      sample: null
    uuid:
      description: The cluster uuid of the node's position (running, recovered or from C(grastate.dat)).
      type: str
      sample: 6b2a7c1e-0f5d-11f0-9a55-0e8e3b2d4c11
    seqno:
      description: >-
        The node's position; null when it is unknown (C(seqno: -1) and no recovery).
      type: int
      sample: 18342
    position_source:
      description: Where RV(galera.seqno) comes from, C(running), C(recovered) or C(grastate); null when unknown.
      type: str
      sample: recovered
    cluster_address:
      description: The members that C(wsrep_cluster_address) in the server's configuration names.
      type: list
      elements: str
      sample: ["10.89.82.11:4567", "10.89.82.12:4567", "10.89.82.13:4567"]
bootstrap_host:
  description: The node chosen to bootstrap the cluster (on every host of the play the same).
  returned: O(state=bootstrapped) and a node could be chosen
  type: str
  sample: ctl2
bootstrap:
  description: The decision in detail.
  returned: O(state=bootstrapped) and a node could be chosen
  type: dict
  contains:
    bootstrap_host:
      description: The chosen node, as RV(bootstrap_host).
      type: str
    reason:
      description: Why this node.
      type: str
      sample: "the highest seqno 18342"
    uuid:
      description: The cluster uuid.
      type: str
    seqno:
      description: The chosen node's seqno.
      type: int
    nodes:
      description: The position of every member, as the decision saw it.
      type: list
      elements: dict
msg:
  description: What was done, or would be done in check mode.
  returned: always
  type: str
  sample: "ctl2 bootstrapped the cluster (the highest seqno 18342); start the other members one at a time"
"""

import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stackwright.cloud.plugins.module_utils.files import tail, write_atomically
from ansible_collections.stackwright.cloud.plugins.module_utils.galera import (
    RUNNING_SERVICE_STATES,
    WSREP_STATUS_VARIABLES,
    GaleraDecisionError,
    decide_bootstrap,
    effective_position,
    parse_cluster_address,
    parse_grastate,
    parse_recovered_position,
    parse_server_options,
    parse_wsrep_status,
    set_safe_to_bootstrap,
)

POLL_SECONDS = 2
# Binaries live in /usr/sbin (mariadbd) and /usr/bin; a become PATH does not always hold both.
BIN_DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
STATUS_QUERY = "SELECT 'wsrep_on', @@global.wsrep_on; SHOW GLOBAL STATUS WHERE Variable_name IN ({})".format(
    ", ".join(f"'{name}'" for name in WSREP_STATUS_VARIABLES)
)
GRASTATE_KEYS = ("uuid", "seqno", "safe_to_bootstrap")


class GaleraNode:
    """This host's server: what it reports, and the commands that change it."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.node_name = self.params["node_name"] or socket.gethostname().split(".")[0]
        self.grastate_path = os.path.join(self.params["datadir"], "grastate.dat")

    def bin(self, name):
        return self.module.get_bin_path(name, required=True, opt_dirs=BIN_DIRS)

    def service_state(self):
        _rc, out, _err = self.module.run_command([self.bin("systemctl"), "is-active", self.params["service"]])
        return (out.strip().splitlines() or ["unknown"])[0]

    def query_wsrep(self):
        """(status variables, error): the server's wsrep_on and wsrep_* status over the unix socket."""
        argv = [
            self.bin("mariadb"),
            "--no-defaults",
            f"--socket={self.params['login_unix_socket']}",
            "--user=root",
            "--connect-timeout=5",
            "-N",
            "-B",
            "-e",
            STATUS_QUERY,
        ]
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            return {}, tail(err or out, 3) or f"mariadb exited with {rc}"
        return parse_wsrep_status(out), None

    def read_grastate_text(self):
        try:
            with open(self.grastate_path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            self.module.fail_json(msg=f"Cannot read {self.grastate_path}: {error}. Run the task with become: true.")

    def server_options(self):
        path = self.module.get_bin_path("my_print_defaults", opt_dirs=BIN_DIRS)
        if not path:
            return {}
        rc, out, _err = self.module.run_command([path, "--mysqld"])
        return parse_server_options(out) if rc == 0 else {}

    def recover_position(self):
        """(position, error) from mariadbd --wsrep-recover; its log goes to stderr, wherever log_error points."""
        argv = [self.bin("mariadbd"), "--user=mysql", "--wsrep-recover", "--disable-log-error"]
        rc, out, err = self.module.run_command(argv)
        output = f"{out}\n{err}"
        position = parse_recovered_position(output)
        if position is not None:
            return {"uuid": position[0], "seqno": position[1]}, None
        return None, f"mariadbd --wsrep-recover (exit {rc}) printed no recovered position: {tail(output, 5)}"

    def status(self, recover=False):
        service = self.service_state()
        status = {
            "node_name": self.node_name,
            "service": service,
            "running": service in RUNNING_SERVICE_STATES,
            "wsrep_on": None,
            "query_error": None,
            "recovered": None,
            "recover_error": None,
        }
        for name in WSREP_STATUS_VARIABLES:
            status[name] = None
        if service == "active":
            variables, status["query_error"] = self.query_wsrep()
            status.update(variables)

        text = self.read_grastate_text()
        grastate = parse_grastate(text) if text is not None else dict.fromkeys(("version", *GRASTATE_KEYS))
        status["grastate"] = {"present": text is not None, **grastate}

        options = self.server_options()
        status["cluster_address"] = parse_cluster_address(options.get("wsrep_cluster_address"))
        if status["wsrep_on"] is None and "wsrep_on" in options:
            status["wsrep_on"] = options["wsrep_on"].strip().upper() in ("ON", "1", "TRUE", "")

        if recover and (grastate["seqno"] is None or grastate["seqno"] < 0):
            if status["running"]:
                status["recover_error"] = (
                    f"mariadb is {service}: --wsrep-recover needs the server stopped (a running node reports its "
                    "position itself)"
                )
            else:
                status["recovered"], status["recover_error"] = self.recover_position()

        status["uuid"], status["seqno"], status["position_source"] = effective_position(status)
        return status

    def mark_safe_to_bootstrap(self, text):
        """Rewrite grastate.dat with safe_to_bootstrap: 1; atomic_move keeps its owner and mode."""
        write_atomically(self.grastate_path, set_safe_to_bootstrap(text), move=self.module.atomic_move)

    def new_cluster(self):
        # It starts the unit given as its argument with --wsrep-new-cluster.
        rc, out, err = self.module.run_command([self.bin("galera_new_cluster"), self.params["service"]])
        if rc != 0:
            self.fail(
                f"galera_new_cluster failed (exit {rc}) on {self.node_name}: {tail(err or out, 15)}. "
                f"See journalctl -u {self.params['service']} for why the server did not start.",
                changed=True,
            )

    def wait_primary(self):
        attempts = max(1, self.params["timeout"] // POLL_SECONDS)
        status = None
        for attempt in range(attempts):
            status = self.status()
            if status["wsrep_cluster_status"] == "Primary":
                return status
            # galera_new_cluster exits with the status of its last command, not of the start: check the unit.
            if status["service"] in ("inactive", "failed"):
                self.fail(
                    f"{self.node_name} ran galera_new_cluster but mariadb is {status['service']}: the server did not "
                    f"start. See journalctl -u {self.params['service']}.",
                    changed=True,
                    galera=status,
                )
            if attempt + 1 < attempts:
                time.sleep(POLL_SECONDS)
        self.fail(
            f"{self.node_name} ran galera_new_cluster but is not in a Primary component after "
            f"{self.params['timeout']} s (cluster status {status['wsrep_cluster_status']}, service "
            f"{status['service']}, {status['query_error'] or 'no query error'}). See journalctl -u "
            f"{self.params['service']}.",
            changed=True,
            galera=status,
        )

    def fail(self, msg, **result):
        self.module.fail_json(msg=msg, **result)


def bootstrap(node):
    module = node.module
    params = module.params
    local = node.status()
    statuses = params["cluster_status"]
    names = [s.get("node_name") for s in statuses if isinstance(s, dict)]
    if node.node_name not in names:
        node.fail(
            f"This node ({node.node_name}) is not in cluster_status ({', '.join(map(str, names))}): gather the "
            "status on every member, this one included, with the same node_name.",
            galera=local,
        )
    try:
        decision = decide_bootstrap(statuses, params["bootstrap_host"])
    except GaleraDecisionError as error:
        node.fail(f"Refusing to bootstrap: {error} Nothing was changed.", galera=local)

    chosen = decision["bootstrap_host"]
    result = {"galera": local, "bootstrap_host": chosen, "bootstrap": decision}
    if chosen != node.node_name:
        module.exit_json(
            changed=False,
            msg=f"{chosen} bootstraps the cluster ({decision['reason']}); start mariadb on this node after it "
            "is Primary, one member at a time.",
            **result,
        )

    # What the decision was based on must still be true here.
    reported = next(s for s in statuses if s.get("node_name") == node.node_name)
    if local["running"]:
        node.fail(
            f"mariadb is {local['service']} on {node.node_name} since the status was gathered: gather the status "
            "of every member again. Nothing was changed.",
            galera=local,
        )
    fresh = {key: local["grastate"].get(key) for key in GRASTATE_KEYS}
    seen = {key: (reported.get("grastate") or {}).get(key) for key in GRASTATE_KEYS}
    if fresh != seen:
        node.fail(
            f"{node.grastate_path} changed since the status was gathered (then {seen}, now {fresh}): gather the "
            "status of every member again. Nothing was changed.",
            galera=local,
        )

    # Without grastate.dat Galera takes the recovered position and needs no safe_to_bootstrap.
    mark_safe = local["grastate"]["present"] and not local["grastate"]["safe_to_bootstrap"]
    steps = ["set safe_to_bootstrap: 1 in grastate.dat"] if mark_safe else []
    steps.append("run galera_new_cluster")
    if module.check_mode:
        module.exit_json(
            changed=True,
            msg=f"Would {' and '.join(steps)} on {node.node_name} ({decision['reason']}).",
            **result,
        )
    if mark_safe:
        node.mark_safe_to_bootstrap(node.read_grastate_text())
    node.new_cluster()
    result["galera"] = node.wait_primary()
    module.exit_json(
        changed=True,
        msg=f"{node.node_name} bootstrapped the cluster ({decision['reason']}); start the other members one at a "
        "time, each until Synced.",
        **result,
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["status", "bootstrapped"], "default": "status"},
            "node_name": {"type": "str"},
            "recover_position": {"type": "bool", "default": False},
            "cluster_status": {"type": "list", "elements": "dict"},
            "bootstrap_host": {"type": "str"},
            "timeout": {"type": "int", "default": 300},
            "service": {"type": "str", "default": "mariadb"},
            "datadir": {"type": "path", "default": "/var/lib/mysql"},
            "login_unix_socket": {"type": "path", "default": "/run/mysqld/mysqld.sock"},
        },
        required_if=[("state", "bootstrapped", ["cluster_status"])],
        supports_check_mode=True,
    )
    node = GaleraNode(module)
    if module.params["state"] == "bootstrapped":
        bootstrap(node)
    status = node.status(recover=module.params["recover_position"])
    module.exit_json(changed=False, galera=status, msg=f"{node.node_name}: mariadb {status['service']}")


if __name__ == "__main__":
    main()
