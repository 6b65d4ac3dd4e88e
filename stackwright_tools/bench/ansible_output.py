# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""What Ansible and systemctl print, read into data: PLAY RECAP counters, ad-hoc JSON results, unit states."""

import json
import re

from stackwright_tools.bench.errors import BenchError

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def parse_recap(text):
    """Counters per host of the last PLAY RECAP in an ansible-playbook output: {host: {"ok": 12, "changed": 0, ...}}."""
    recap = None
    lines = ANSI.sub("", text).splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("PLAY RECAP"):
            continue
        recap = {}
        for entry in lines[index + 1 :]:
            match = re.match(r"^(\S+)\s*:\s*((?:[a-z_]+=\d+\s*)+)$", entry.strip())
            if not match:
                break
            recap[match.group(1)] = {key: int(value) for key, value in re.findall(r"([a-z_]+)=(\d+)", match.group(2))}
    if recap is None:
        raise BenchError("no PLAY RECAP in the output")
    return recap


def json_document(text):
    """The JSON document in an output where other callbacks printed lines before and after it (profile_tasks)."""
    match = re.search(r"^\{", text, re.M)
    if match is None:
        raise BenchError(f"no JSON in the output: {text.strip()[-500:]!r}")
    return json.JSONDecoder().raw_decode(text, match.start())[0]


def adhoc_results(document):
    """{host: result} of an ad-hoc run's JSON (ansible.posix.json), whose hosts may come in several task entries."""
    results = {}
    for play in document.get("plays") or []:
        for task in play.get("tasks") or []:
            results |= task.get("hosts") or {}
    return results


def adhoc_failed(result):
    return bool(result.get("failed") or result.get("unreachable"))


def parse_unit_state(text):
    """`systemctl show --property=Id,MainPID,ActiveEnterTimestamp U1 U2 ...` -> {Id: {"MainPID": ..., ...}}."""
    units = {}
    for block in re.split(r"\n\s*\n", text.strip()):
        properties = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in properties:
            units[properties.pop("Id")] = properties
    return units


def restarted_units(before, after):
    """Units per host whose main PID or start time changed between two snapshots ({host: systemctl show output})."""
    restarted = {}
    for host, state in before.items():
        old = parse_unit_state(state)
        new = parse_unit_state(after.get(host, ""))
        changed = sorted(unit for unit in old if new.get(unit) != old[unit])
        if changed:
            restarted[host] = changed
    return restarted
