# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The pure analysis of stackwright.cloud.rabbitmq_cluster: the node name the CLI tools use, the quorum figures of the
queues, the cluster summary, its problems, and why a restart of a node is not safe now."""

from __future__ import annotations

REPLICATED_TYPES = ("quorum", "stream")


def node_name_from_env(text, hostname):
    """The node name the CLI tools use: NODENAME of rabbitmq-env.conf, completed with @hostname like they do."""
    name = None
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if key.strip() in ("NODENAME", "RABBITMQ_NODENAME"):
            name = value.strip().strip("\"'")
    name = name or "rabbit"
    return name if "@" in name else f"{name}@{hostname}"


def _as_list(value):
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


def analyze_queues(queues, self_node):
    """Quorum figures of `list_queues name type leader members online` rows (vhost added)."""
    by_type = {}
    leaders = {}
    without_quorum, members_down, critical = [], [], []
    for queue in queues:
        queue_type = str(queue.get("type") or "unknown")
        by_type[queue_type] = by_type.get(queue_type, 0) + 1
        if queue_type not in REPLICATED_TYPES:
            continue
        leader = queue.get("leader") or ""
        if queue_type == "quorum" and leader:
            leaders[leader] = leaders.get(leader, 0) + 1
        members = _as_list(queue.get("members"))
        if not members:
            continue
        online = [node for node in _as_list(queue.get("online")) if node in members]
        majority = len(members) // 2 + 1
        entry = {
            "vhost": queue.get("vhost"),
            "name": queue.get("name"),
            "type": queue_type,
            "leader": leader,
            "members": members,
            "online": online,
        }
        if len(online) < majority:
            without_quorum.append(entry)
        elif len(online) < len(members):
            members_down.append(entry)
        if self_node in online and len(online) - 1 < majority <= len(online):
            critical.append(entry)
    return {
        "total": len(queues),
        "by_type": by_type,
        "leaders_per_node": leaders,
        "without_quorum": without_quorum,
        "members_down": members_down,
        "quorum_critical": critical,
    }


def summarize_cluster(cluster, queues=None):
    """The fields of RV(rabbitmq) from `cluster_status --formatter json` and, optionally, analyze_queues()."""
    disk = sorted(cluster.get("disk_nodes") or [])
    running = sorted(cluster.get("running_nodes") or [])
    members = sorted(set(disk) | set(cluster.get("ram_nodes") or []))
    versions = cluster.get("versions") or {}
    maintenance = cluster.get("maintenance_status") or {}
    leaders = (queues or {}).get("leaders_per_node") or {}
    nodes = {}
    for name in sorted(set(members) | set(running)):
        nodes[name] = {
            "disk": name in disk,
            "running": name in running,
            "maintenance": maintenance.get(name),
            "version": (versions.get(name) or {}).get("rabbitmq_version"),
            "quorum_leaders": leaders.get(name, 0) if queues is not None else None,
        }
    alarms = [{"node": alarm.get("node"), "resource": alarm.get("resource")} for alarm in cluster.get("alarms") or []]
    partitions = {node: list(peers) for node, peers in (cluster.get("partitions") or {}).items() if peers}
    return {
        "cluster_name": cluster.get("cluster_name"),
        "disk_nodes": disk,
        "running_nodes": running,
        "stopped_nodes": [name for name in members if name not in running],
        "nodes": nodes,
        "partitions": partitions,
        "alarms": alarms,
    }


def _queue_names(entries):
    return ", ".join(f"'{entry['name']}' in vhost '{entry['vhost']}'" for entry in entries)


def find_problems(status):
    problems = [f"{name} is not running" for name in status.get("stopped_nodes") or []]
    for node, peers in (status.get("partitions") or {}).items():
        problems.append(f"network partition: {node} cannot reach {', '.join(peers)}")
    for alarm in status.get("alarms") or []:
        problems.append(f"{alarm['resource']} alarm on {alarm['node']}")
    queues = status.get("queues") or {}
    if queues.get("without_quorum"):
        problems.append(f"queues without a majority online: {_queue_names(queues['without_quorum'])}")
    if queues.get("members_down"):
        problems.append(f"queues with members down: {_queue_names(queues['members_down'])}")
    return problems


def restart_refusals(status, critical_from_cli):
    """Why restarting this node is not safe now, one sentence each with what to do; empty when it is safe."""
    me = status["node"]
    refusals = []
    if status.get("partitions"):
        split = "; ".join(f"{node} cannot reach {', '.join(peers)}" for node, peers in status["partitions"].items())
        refusals.append(
            f"the cluster has a network partition ({split}): heal it first (see rabbitmqctl cluster_status and "
            "https://www.rabbitmq.com/docs/partitions)"
        )
    if status.get("alarms"):
        alarms = ", ".join(f"{alarm['resource']} on {alarm['node']}" for alarm in status["alarms"])
        refusals.append(
            f"resource alarms are raised ({alarms}): free the memory or disk space first; if restarting this node "
            "is the cure, restart it by hand (systemctl restart rabbitmq-server)"
        )
    others_down = [name for name in status.get("stopped_nodes") or [] if name != me]
    if others_down:
        refusals.append(
            f"{', '.join(others_down)} {'is' if len(others_down) == 1 else 'are'} not running: with another member "
            "down, this restart would leave the cluster without its majority (pause_minority pauses the rest); "
            "start the missing members first"
        )
    computed = (status.get("queues") or {}).get("quorum_critical") or []
    critical = {(entry["vhost"], entry["name"]): entry for entry in computed}
    for entry in critical_from_cli:
        vhost, name = entry.get("virtual_host"), entry.get("name")
        critical.setdefault((vhost, name), {"vhost": vhost, "name": name})
    if critical:
        refusals.append(
            f"{len(critical)} quorum queue(s) or stream(s) would lose their majority while {me} is down "
            f"({_queue_names(list(critical.values())[:10])}{', ...' if len(critical) > 10 else ''}): wait until "
            "their other members are online (rabbitmq-upgrade await_online_quorum_plus_one) and run this again"
        )
    return refusals
