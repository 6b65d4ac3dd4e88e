# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Pure logic of stackwright.cloud.galera_cluster: parse what MariaDB and Galera print, choose the bootstrap node.

No I/O here: the module runs the commands and reads the files, these functions only interpret them.
"""

from __future__ import annotations

import re

# The cluster uuid of a node that holds no Galera state.
NO_STATE_UUID = "00000000-0000-0000-0000-000000000000"

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# "... [Note] WSREP: Recovered position: <uuid>:<seqno>"; newer servers may append ",<gtid>".
_RECOVERED_RE = re.compile(r"WSREP: Recovered position:\s*(" + _UUID + r"):(-?\d+)")

# Status variables the module reads; integers and ON/OFF flags are converted.
WSREP_STATUS_VARIABLES = (
    "wsrep_cluster_size",
    "wsrep_cluster_status",
    "wsrep_local_state",
    "wsrep_local_state_comment",
    "wsrep_ready",
    "wsrep_connected",
    "wsrep_cluster_state_uuid",
    "wsrep_last_committed",
)
_INT_VARIABLES = {"wsrep_cluster_size", "wsrep_local_state", "wsrep_last_committed"}
_BOOL_VARIABLES = {"wsrep_ready", "wsrep_connected", "wsrep_on"}

# systemctl is-active states in which a server process exists (or is about to).
RUNNING_SERVICE_STATES = ("active", "activating", "deactivating", "reloading", "refreshing")


class GaleraDecisionError(Exception):
    """The nodes' state does not allow an automatic bootstrap; the message says why and what to do."""


def _to_int(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _to_bool(value):
    text = str(value).strip().upper()
    if text in ("ON", "1", "TRUE", "YES"):
        return True
    if text in ("OFF", "0", "FALSE", "NO"):
        return False
    return None


def parse_grastate(text):
    """The fields of grastate.dat: version, uuid, seqno (int), safe_to_bootstrap (bool); None for a missing field."""
    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        fields[key.strip()] = value.strip()
    safe = fields.get("safe_to_bootstrap")
    return {
        "version": fields.get("version"),
        "uuid": fields.get("uuid") or None,
        "seqno": _to_int(fields["seqno"]) if "seqno" in fields else None,
        "safe_to_bootstrap": None if safe is None else _to_int(safe) == 1,
    }


def set_safe_to_bootstrap(text):
    """grastate.dat with safe_to_bootstrap: 1, every other line kept as it was."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.split(":", 1)[0].strip() == "safe_to_bootstrap":
            ending = "\n" if line.endswith("\n") else ""
            lines[index] = "safe_to_bootstrap: 1" + ending
            return "".join(lines)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(lines) + "safe_to_bootstrap: 1\n"


def parse_recovered_position(output):
    """(uuid, seqno) from the output of mariadbd --wsrep-recover, or None when it printed no position.

    The last such line wins: it is the one the finished recovery printed.
    """
    found = _RECOVERED_RE.findall(output or "")
    if not found:
        return None
    uuid, seqno = found[-1]
    return uuid.lower(), int(seqno)


def parse_wsrep_status(output):
    """Variables from `mariadb -N -B` output (name TAB value per line), ON/OFF as bool and counters as int."""
    status = {}
    for line in (output or "").splitlines():
        if "\t" not in line:
            continue
        name, value = line.split("\t", 1)
        name = name.strip().lower()
        value = value.strip()
        if name in _INT_VARIABLES:
            status[name] = _to_int(value)
        elif name in _BOOL_VARIABLES:
            status[name] = _to_bool(value)
        else:
            status[name] = value
    return status


def parse_server_options(output):
    """Options from `my_print_defaults --mysqld` (one --name=value per line), names with '_'; the last one wins."""
    options = {}
    for line in (output or "").splitlines():
        line = line.strip()
        if not line.startswith("--"):
            continue
        name, _sep, value = line[2:].partition("=")
        options[name.replace("-", "_")] = value
    return options


def parse_cluster_address(value):
    """Members of a wsrep_cluster_address such as "gcomm://10.0.0.1:4567,10.0.0.2:4567"; None when it is unset."""
    if value is None:
        return None
    value = value.strip().strip("\"'")
    if not value.startswith("gcomm://"):
        return None
    members = value[len("gcomm://") :].split("?", 1)[0]
    return [member.strip() for member in members.split(",") if member.strip()]


def effective_position(status):
    """(uuid, seqno, source) of a node: the recovered position, else a clean grastate.dat, else seqno None.

    A running node reports what it has committed. seqno None means unknown: grastate.dat says -1 (the
    server crashed or was killed) and no --wsrep-recover ran.
    """
    if status.get("running") and status.get("wsrep_last_committed") is not None:
        return status.get("wsrep_cluster_state_uuid"), status["wsrep_last_committed"], "running"
    recovered = status.get("recovered")
    if recovered:
        return recovered.get("uuid"), recovered.get("seqno"), "recovered"
    grastate = status.get("grastate") or {}
    seqno = grastate.get("seqno")
    if seqno is not None and seqno >= 0:
        return grastate.get("uuid"), seqno, "grastate"
    return grastate.get("uuid"), None, None


def _has_no_state(uuid):
    return not uuid or uuid == NO_STATE_UUID


def _describe(status):
    uuid, seqno, source = effective_position(status)
    grastate = status.get("grastate") or {}
    return (
        f"{status.get('node_name')}: mariadb {status.get('service')}, "
        f"cluster {status.get('wsrep_cluster_status') or '-'}, uuid {uuid or 'none'}, "
        f"seqno {seqno if seqno is not None else 'unknown'} ({source or 'grastate -1'}), "
        f"safe_to_bootstrap {int(bool(grastate.get('safe_to_bootstrap')))}"
    )


def _check_entries(statuses):
    if not statuses:
        raise GaleraDecisionError(
            "cluster_status is empty: pass the galera result of state=status from every cluster member."
        )
    names = []
    for index, status in enumerate(statuses):
        if not isinstance(status, dict) or not status.get("node_name"):
            raise GaleraDecisionError(
                f"cluster_status item {index} is not a galera status of this module (no node_name): pass the "
                "galera result that state=status returned on every member."
            )
        names.append(status["node_name"])
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise GaleraDecisionError(
            f"cluster_status names {', '.join(duplicates)} more than once: gather status once per member, each "
            "with its own node_name."
        )
    return names


def _refuse_running(statuses):
    running = [s for s in statuses if s.get("running") or s.get("wsrep_cluster_status") == "Primary"]
    if not running:
        return
    primary = [s for s in running if s.get("wsrep_cluster_status") == "Primary"]
    if primary:
        names = ", ".join(s["node_name"] for s in primary)
        raise GaleraDecisionError(
            f"The cluster is not fully down: {names} run(s) in a Primary component. A bootstrap now would split "
            "the cluster in two. Start the stopped members normally instead, one at a time, each until Synced "
            "(systemctl start mariadb, or run playbooks/mariadb.yml). Nodes: "
            + "; ".join(_describe(s) for s in statuses)
        )
    names = ", ".join(s["node_name"] for s in running)
    raise GaleraDecisionError(
        f"mariadb still runs on {names} without a Primary component (quorum lost, or still starting). Stop it "
        "there (systemctl stop mariadb), gather the status again with recover_position: true and run this "
        "again; or, to keep those nodes running, make the most advanced of them Primary by hand with "
        "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'. Nodes: " + "; ".join(_describe(s) for s in statuses)
    )


def decide_bootstrap(statuses, bootstrap_host=None):
    """Choose the node that bootstraps a fully stopped cluster, or raise GaleraDecisionError saying why not.

    statuses: the galera dicts state=status returned on every member. bootstrap_host: the operator's explicit
    choice; it settles a seqno tie or a member that cannot be asked, never a node with older data.
    Returns bootstrap_host, reason, uuid, seqno, and the position of every node.
    """
    names = _check_entries(statuses)
    if bootstrap_host is not None and bootstrap_host not in names:
        raise GaleraDecisionError(
            f"bootstrap_host {bootstrap_host} is not in cluster_status ({', '.join(names)}): name one of them."
        )
    _refuse_running(statuses)

    configured = max((len(s.get("cluster_address") or []) for s in statuses), default=0)
    missing = max(configured - len(statuses), 0)
    if missing and bootstrap_host is None:
        raise GaleraDecisionError(
            f"wsrep_cluster_address lists {configured} members but cluster_status holds {len(statuses)} "
            f"({', '.join(names)}): a member that was not asked may hold newer data. Gather status on every "
            "member; if a member is lost for good, name the node to bootstrap with bootstrap_host."
        )

    nodes = []
    unknown = []
    for status in statuses:
        uuid, seqno, source = effective_position(status)
        grastate = status.get("grastate") or {}
        node = {
            "node_name": status["node_name"],
            "uuid": uuid,
            "seqno": seqno,
            "position_source": source,
            "safe_to_bootstrap": bool(grastate.get("safe_to_bootstrap")),
        }
        if seqno is None or (seqno < 0 and not _has_no_state(uuid)):
            error = status.get("recover_error")
            unknown.append(f"{node['node_name']}" + (f" (recovery failed: {error})" if error else ""))
        nodes.append(node)
    if unknown:
        raise GaleraDecisionError(
            f"The position of {', '.join(unknown)} is unknown: grastate.dat is missing or says seqno -1 (the "
            "server crashed or was killed) and no mariadbd --wsrep-recover ran. Gather the status again with "
            "recover_position: true while mariadb is stopped there."
        )

    with_state = [n for n in nodes if not _has_no_state(n["uuid"])]
    if not with_state:
        raise GaleraDecisionError(
            "No member holds Galera state: this is a new cluster, not a stopped one. Deploy it with "
            "playbooks/mariadb.yml, which bootstraps a new cluster."
        )
    uuids = sorted({n["uuid"].lower() for n in with_state})
    if len(uuids) > 1:
        raise GaleraDecisionError(
            "The members disagree on the cluster uuid ("
            + "; ".join(f"{n['node_name']}: {n['uuid']}" for n in with_state)
            + "): their data belongs to different clusters (a member was bootstrapped on its own?). Look at the "
            "data on each and decide by hand which survives; a member whose data is dropped rejoins by a full "
            "state transfer after its grastate.dat is removed."
        )

    top_seqno = max(n["seqno"] for n in with_state)
    top = [n for n in with_state if n["seqno"] == top_seqno]
    safe = [n for n in with_state if n["safe_to_bootstrap"]]
    by_name = {n["node_name"]: n for n in nodes}

    if bootstrap_host is not None:
        chosen = by_name[bootstrap_host]
        if _has_no_state(chosen["uuid"]):
            raise GaleraDecisionError(
                f"bootstrap_host {bootstrap_host} holds no Galera state: name a node with data "
                f"({', '.join(n['node_name'] for n in top)} hold(s) the highest seqno {top_seqno})."
            )
        if chosen["seqno"] < top_seqno:
            raise GaleraDecisionError(
                f"bootstrap_host {bootstrap_host} has seqno {chosen['seqno']}, lower than the {top_seqno} of "
                f"{', '.join(n['node_name'] for n in top)}: bootstrapping it would throw away "
                f"{top_seqno - chosen['seqno']} committed transaction(s). Name one of the most advanced nodes."
            )
        reason = f"named by bootstrap_host (seqno {top_seqno}, the highest)"
        if missing:
            reason += f"; {missing} configured member(s) were not asked"
    elif len(safe) == 1:
        chosen = safe[0]
        if chosen["seqno"] < top_seqno:
            raise GaleraDecisionError(
                f"{chosen['node_name']} has safe_to_bootstrap: 1 but seqno {chosen['seqno']}, lower than the "
                f"{top_seqno} of {', '.join(n['node_name'] for n in top)}: the grastate.dat files contradict "
                "each other (edited by hand?). Look at the data and name the node to bootstrap with bootstrap_host."
            )
        reason = f"the only node with safe_to_bootstrap: 1, it left the cluster last (seqno {chosen['seqno']})"
    elif len(top) == 1:
        chosen = top[0]
        reason = f"the highest seqno {top_seqno}"
    else:
        raise GaleraDecisionError(
            f"{', '.join(n['node_name'] for n in top)} share the highest seqno {top_seqno} and "
            + ("none" if not safe else "more than one")
            + " has safe_to_bootstrap: 1. They hold the same transactions, so any of them will do: name one "
            f"with bootstrap_host (for example bootstrap_host: {top[0]['node_name']})."
        )
    return {
        "bootstrap_host": chosen["node_name"],
        "reason": reason,
        "uuid": chosen["uuid"],
        "seqno": chosen["seqno"],
        "nodes": nodes,
    }
