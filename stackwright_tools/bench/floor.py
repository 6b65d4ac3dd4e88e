# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The install floor: which deploy tasks no deployer can skip, and their critical path over the hosts."""

import json
import re
from collections import defaultdict

from stackwright_tools.bench.errors import BenchError

# Install floor: the steps no deployer can skip. A task belongs to a category only when it changed something.
FLOOR_CATEGORIES = ("packages", "venv", "db_sync", "first_start")
PACKAGE_ACTIONS = {"apt", "package"}
SYSTEMD_ACTIONS = {"systemd", "systemd_service", "service"}
SHELL_ACTIONS = {"command", "shell"}
# roles/python_venv/tasks/build.yml installs compilers for the wheel build, which a warm deploy never runs.
NOT_FLOOR_PACKAGES = re.compile(r"wheel build tools")
# roles/python_venv/tasks/venv.yml
VENV_TASK = re.compile(r"^(Create the venv|Install from the wheelhouse)\b")
# roles/python_venv installs the venvs of a deploy in the background (playbooks/venvs.yml), niced and sharing the CPU
# with the deploy, so neither a task nor the marker's start and end (Unix seconds) measure the install alone. The floor
# runs the same install script again, alone, into a scratch directory, and reads the scratch markers' times.
VENV_FLOOR_COMMAND = """set -e
script=/var/cache/stackwright/venvs-prefetch.sh scratch=/var/tmp/stackwright-floor-venvs
[ -f "$script" ] || exit 0
rm -rf "$scratch" && mkdir -p "$scratch"
sed "s#/openstack/venvs/#$scratch/#g" "$script" > "$scratch/run.sh"
sh "$scratch/run.sh" >/dev/null 2>&1 || true
for f in "$scratch"/*/.stackwright-*; do [ -f "$f" ] && echo "$f $(cat "$f")"; done
rm -rf "$scratch"
"""
VENV_MARKER_LINE = re.compile(r"^/\S*/([^/\s]+)/\.stackwright-\S+ (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$")
# roles/openstack_service/tasks/db_sync.yml runs every service's db sync / manage commands under this name.
DB_SYNC_TASK = re.compile(r"^Migrate the database schema\b|\bdb[_ ]sync\b|db-manage", re.IGNORECASE)
# Tasks that start a service for the first time: "Start chrony now and at boot", "Start and enable the units",
# "Run the monitor", "Start the first cluster member", "Bootstrap the new cluster with galera_new_cluster ...".
FIRST_START_TASK = re.compile(r"^(Start|Run|Bootstrap the new cluster)\b")
# Handlers that (re)start what a first deploy configured: "Restart chrony", "Reload haproxy", "Restart RabbitMQ ...".
HANDLER_START_TASK = re.compile(r"^(Restart|Start|Reload)\b")


def short_action(action):
    for prefix in ("ansible.builtin.", "ansible.legacy."):
        if action.startswith(prefix):
            return action[len(prefix) :]
    return action


def classify(record):
    """Floor category of one task_times record, or None when the task is not part of the install floor."""
    if record.get("status") != "changed":
        return None
    action = short_action(record.get("action", ""))
    name = record.get("task", "")
    if action in PACKAGE_ACTIONS:
        return None if NOT_FLOOR_PACKAGES.search(name) else "packages"
    if action not in SHELL_ACTIONS | SYSTEMD_ACTIONS:
        return None
    if VENV_TASK.match(name):
        return "venv"
    if DB_SYNC_TASK.search(name):
        return "db_sync"
    if record.get("handler"):
        return "first_start" if HANDLER_START_TASK.match(name) else None
    if FIRST_START_TASK.match(name):
        return "first_start"
    return None


def load_task_times(path):
    records = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                records.append(json.loads(line))
    return records


def parse_venv_markers(text):
    """(venv, start, end) of every venv marker that records its install; markers of older deploys are empty."""
    found = []
    for line in text.splitlines():
        if match := VENV_MARKER_LINE.match(line.strip()):
            found.append((match.group(1), float(match.group(2)), float(match.group(3))))
    return found


def venv_install_records(markers):
    """Task-like records of venv installs from {host: [(venv, start, end)]} (the floor's installs run alone)."""
    return [
        {
            "task": f"Install from the wheelhouse {venv} (alone, for the floor)",
            "action": "ansible.builtin.command",
            "status": "changed",
            "handler": False,
            "host": host,
            "delegated_to": None,
            "start": start,
            "end": end,
            "duration": round(end - start, 3),
        }
        for host, found in sorted(markers.items())
        for venv, start, end in found
    ]


def with_venv_installs(records, installs):
    """The deploy's task records with the venv installs of the markers in place of the installs the tasks ran: a
    marker covers a foreground install too, and the background ones are in no task."""
    hosts = {install["host"] for install in installs}
    kept = [
        record
        for record in records
        if not (
            record.get("host") in hosts
            and VENV_TASK.match(record.get("task", ""))
            and record.get("task", "").startswith("Install from the wheelhouse")
        )
    ]
    return kept + installs


def floor_summary(records, slowest=10):
    """Install floor of one run: per category the slowest host's sum (hosts work in parallel), floor = their sum."""
    if not records:
        raise BenchError("no task times were recorded (is plugins/callback/task_times.py loaded?)")
    per_host = {category: defaultdict(float) for category in FLOOR_CATEGORIES}
    tasks = defaultdict(int)
    for record in records:
        category = classify(record)
        if category is None:
            continue
        # The host that did the work: a delegated task (the wheelhouse builder, run_once db syncs) runs there.
        per_host[category][record.get("delegated_to") or record["host"]] += record["duration"]
        tasks[category] += 1
    categories = {}
    for category in FLOOR_CATEGORIES:
        sums = per_host[category]
        host = max(sums, key=sums.get) if sums else None
        categories[category] = {
            "seconds": round(sums[host], 1) if host else 0.0,
            "host": host,
            "tasks": tasks[category],
            "per_host": {name: round(value, 1) for name, value in sorted(sums.items())},
        }
    ran = [record for record in records if record.get("status") in ("ok", "changed")]
    top = sorted(ran, key=lambda record: record["duration"], reverse=True)[:slowest]
    return {
        "seconds": round(sum(entry["seconds"] for entry in categories.values()), 1),
        "categories": categories,
        "tasks_recorded": len(records),
        "slowest_tasks": [
            {key: record.get(key) for key in ("task", "role", "host", "duration", "status")}
            | {"category": classify(record)}
            for record in top
        ],
    }
