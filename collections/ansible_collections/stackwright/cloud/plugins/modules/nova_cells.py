# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nova_cells
short_description: List nova's cells and mapped hosts, create a cell, and map new compute hosts to their cell
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - >-
    Runs on a host with nova's configuration and database access (a controller). It reads nova's cells, host
    mappings and compute hosts from nova's databases with one read-only Python process per read (the Python next to
    O(nova_manage)), and changes them only through C(nova-manage cell_v2).
  - >-
    Every run reports the cells (as C(nova-manage cell_v2 list_cells) lists them, passwords masked by nova-manage's
    own function) and the hosts mapped to them (as C(list_hosts) lists them); without O(state) that is all it does.
  - >-
    O(state=present) creates the cell O(name) (C(nova-manage cell_v2 create_cell)) unless a cell of that name
    exists, with the message queue and database of nova's configuration (C([DEFAULT] transport_url),
    C([database] connection)). It reports C(changed) only when it created the cell; an existing cell is left as it
    is.
  - >-
    O(state=discovered) maps the compute hosts that registered in a cell but have no host mapping yet
    (C(nova-manage cell_v2 discover_hosts --verbose)) and reports C(changed) only when it mapped a host. It runs no
    discovery when nova's databases show no unmapped compute host. With O(hosts), it first waits until each of those
    compute hosts has registered (a new nova-compute needs some seconds after its start), and fails, naming them, for
    hosts that do not register or are not mapped afterwards.
  - >-
    In check mode, O(state=discovered) reads the compute hosts of every cell from nova's databases with the
    Python next to O(nova_manage) (what C(discover_hosts) would look at, read only) and reports those without a host
    mapping in RV(mapped_hosts), without mapping them and without waiting.
options:
  state:
    description:
      - Not set, the module only reports cells and mapped hosts.
      - V(present) creates the cell O(name) when it is missing.
      - V(discovered) maps unmapped compute hosts to their cell.
    type: str
    choices: [present, discovered]
  name:
    description:
      - With O(state=present), the name of the cell. Required then.
    type: str
  nova_manage:
    description:
      - The C(nova-manage) of nova's venv, for example C(/openstack/venvs/nova-34.0.0/bin/nova-manage). A bare name is
        looked up in the PATH.
    type: str
    default: nova-manage
  python:
    description:
      - Interpreter that can import nova, for the read-only reads of nova's cells, host mappings and compute hosts.
      - Defaults to C(python3) in the directory of O(nova_manage).
    type: path
  config_files:
    description:
      - Configuration files passed as C(--config-file). Empty uses nova's defaults (C(/etc/nova/nova.conf)).
    type: list
    elements: path
    default: []
  hosts:
    description:
      - With O(state=discovered), the compute hosts (nova's host names) that must end up mapped.
      - The task waits up to O(timeout) seconds for them to register before it runs the discovery.
    type: list
    elements: str
    default: []
  cell:
    description:
      - Restrict the discovery to one cell, by name or uuid.
    type: str
  by_service:
    description:
      - Find compute hosts by their nova-compute service instead of their compute node (C(--by-service)), as
        for ironic hosts that have no compute node yet.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for the O(hosts) to register.
    type: int
    default: 300
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: >-
      With O(state=discovered), reports the hosts a discovery would map, from nova's databases, read only. With
      O(state=present), reports whether the cell would be created.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Run it as root or as the nova user (it must read nova.conf), on one controller, with C(run_once).
  - Nova's periodic discovery (C([scheduler] discover_hosts_in_cells_interval)) does the same work; Stackwright turns
    it off and maps compute hosts with this module when it deploys them.
seealso:
  - name: nova-manage cell_v2 commands
    description: What create_cell and discover_hosts do, and what list_cells and list_hosts list.
    link: https://docs.openstack.org/nova/latest/cli/nova-manage.html#cell-v2-commands
"""

EXAMPLES = r"""
- name: Map the new compute hosts, after they registered
  stackwright.cloud.nova_cells:
    state: discovered
    nova_manage: /openstack/venvs/nova-34.0.0/bin/nova-manage
    hosts: "{{ groups['compute'] }}"
  delegate_to: "{{ groups['controller'][0] }}"
  run_once: true
  register: discovery

- name: Show what was mapped
  ansible.builtin.debug:
    var: discovery.mapped_hosts

- name: Create the cell of the instances unless it exists
  stackwright.cloud.nova_cells:
    state: present
    name: cell1
    nova_manage: /openstack/venvs/nova-34.0.0/bin/nova-manage
  delegate_to: "{{ groups['controller'][0] }}"
  run_once: true

- name: List the cells and their hosts
  stackwright.cloud.nova_cells:
    nova_manage: /openstack/venvs/nova-34.0.0/bin/nova-manage
  register: cells

- name: Fail when cell1 is missing
  ansible.builtin.assert:
    that: "'cell1' in cells.cells | map(attribute='name')"
"""

RETURN = r"""
cells:
  description: >-
    The cells after the task, read from nova's API database and listed as C(nova-manage cell_v2 list_cells) lists
    them (sorted by name, passwords masked the same way).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the cell (empty for a cell without one).
      type: str
      sample: cell1
    uuid:
      description: UUID of the cell (cell0's is all zeros).
      type: str
      sample: 5b1b7c1e-4f6a-4c5e-9d1e-2f0b8c3a6d71
    transport_url:
      description: Message queue of the cell, password masked.
      type: str
      sample: rabbit://nova:****@10.89.70.11:5671/nova
    database_connection:
      description: Database of the cell, password masked.
      type: str
      sample: mysql+pymysql://nova:****@10.89.70.250/nova?charset=utf8mb4
    disabled:
      description: Whether the scheduler skips the cell.
      type: bool
      sample: false
hosts:
  description: >-
    The hosts mapped to a cell after the task, as C(nova-manage cell_v2 list_hosts) lists them (sorted by host): read
    from nova's API database, plus the mappings that C(discover_hosts) reported creating (in the cell where the read
    found each compute host). When that report does not match what was read (a host registered meanwhile), the
    database is read again.
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: Nova's name of the compute host.
      type: str
      sample: cmp1
    cell_name:
      description: Name of its cell.
      type: str
      sample: cell1
    cell_uuid:
      description: UUID of its cell.
      type: str
      sample: 5b1b7c1e-4f6a-4c5e-9d1e-2f0b8c3a6d71
mapped_hosts:
  description:
    - Compute hosts this task mapped, or in check mode would map, sorted. Empty without O(state).
  returned: always
  type: list
  elements: str
  sample: [cmp2]
"""

import json
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule

CELL0_UUID = "00000000-0000-0000-0000-000000000000"
POLL_SECONDS = 5
# discover_hosts --verbose prints this for every host mapping it creates (nova/objects/host_mapping.py): the host in
# quotes for a compute node, bare for a service (--by-service).
CREATED_MAPPING = re.compile(r"^Creating host mapping for (?:compute host '([^']+)'|service '?([^'\s]+))", re.M)

# Read only, one process for everything this module reads, printed as one JSON object on the last line of stdout.
# argv: what to read of the compute hosts ("node", "service" or "none"), then the --config-file arguments.
# cells and hosts: as nova-manage cell_v2 list_cells and list_hosts list them (nova/cmd/manage.py): cells sorted by
# name (stable over their ids), URLs masked by nova-manage's own function; host mappings sorted by host.
# compute_hosts: the compute nodes (or nova-compute services) of every cell but cell0 and whether each has a host
# mapping, looked up as discover_hosts looks it up; null for "none", which reads no cell database.
# nova.cmd.manage comes first: importing it applies nova's eventlet monkey patching before anything else, as
# nova-manage does.
PROBE = r"""
import json, sys
from nova.cmd.manage import mask_passwd_in_url
from nova import config, context, exception, objects
kind = sys.argv[1]
objects.register_all()
config.parse_args(["nova-cells-snapshot"] + sys.argv[2:])
ctxt = context.get_admin_context()
mappings = objects.CellMappingList.get_all(ctxt)
cells = [
    {
        "name": cell.name or "",
        "uuid": cell.uuid,
        "transport_url": mask_passwd_in_url(cell.transport_url),
        "database_connection": mask_passwd_in_url(cell.database_connection),
        "disabled": bool(cell.disabled),
    }
    for cell in sorted(mappings, key=lambda cell: cell.name or "")
]
hosts = [
    {"host": hm.host, "cell_name": hm.cell_mapping.name or "", "cell_uuid": hm.cell_mapping.uuid}
    for hm in sorted(objects.HostMappingList.get_all(ctxt), key=lambda hm: hm.host)
]
compute_hosts = None
if kind != "none":
    compute_hosts = []
    for cell in mappings:
        if cell.is_cell0():
            continue
        with context.target_cell(ctxt, cell) as cctxt:
            if kind == "service":
                services = objects.ServiceList.get_by_binary(cctxt, "nova-compute", include_disabled=True)
                names = {s.host for s in services}
            else:
                names = {n.host for n in objects.ComputeNodeList.get_all(cctxt)}
        for name in sorted(names):
            try:
                objects.HostMapping.get_by_host(ctxt, name)
                mapped = True
            except exception.HostMappingNotFound:
                mapped = False
            compute_hosts.append({"host": name, "cell_name": cell.name or "", "cell_uuid": cell.uuid, "mapped": mapped})
print(json.dumps({"cells": cells, "hosts": hosts, "compute_hosts": compute_hosts}))
"""


class NovaCellsError(Exception):
    """A nova-manage call or the read of nova's databases failed, or printed something this module cannot read."""


def parse_discovery(text):
    """Host names that discover_hosts --verbose reports as newly mapped, sorted and unique."""
    return sorted({node or service for node, service in CREATED_MAPPING.findall(text)})


def parse_snapshot(text):
    """The JSON object PROBE prints on its last line: cells, hosts and compute_hosts (null when not read)."""
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        snapshot = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise NovaCellsError(f"reading nova's cells printed no JSON: {text.strip()[-500:]!r}") from None
    if not isinstance(snapshot, dict):
        raise NovaCellsError("reading nova's cells printed JSON that is not an object")
    for key, types in (("cells", list), ("hosts", list), ("compute_hosts", (list, type(None)))):
        if key not in snapshot or not isinstance(snapshot[key], types):
            raise NovaCellsError(f"reading nova's cells printed no {key} list")
    return snapshot


class NovaCells:
    def __init__(self, module):
        self.module = module
        params = module.params
        name = params["nova_manage"]
        self.nova_manage = name if os.path.isabs(name) else module.get_bin_path(name, required=True)
        self.python = params["python"] or os.path.join(os.path.dirname(self.nova_manage), "python3")
        self.config_args = [arg for path in params["config_files"] for arg in ("--config-file", path)]

    def manage(self, *args):
        argv = [self.nova_manage, *self.config_args, "cell_v2", *args]
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            raise NovaCellsError(
                f"{' '.join(argv[-len(args) - 1 :])} failed (exit {rc}): {(err or out).strip()[-1000:]}"
            )
        return out

    def snapshot(self, compute_hosts=False):
        """Cells and host mappings, with compute_hosts also the compute hosts of every cell, in one process."""
        kind = ("service" if self.module.params["by_service"] else "node") if compute_hosts else "none"
        argv = [self.python, "-c", PROBE, kind, *self.config_args]
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            what = "cells, host mappings and compute hosts" if compute_hosts else "cells and host mappings"
            raise NovaCellsError(
                f"reading nova's {what} with {self.python} failed (exit {rc}): {(err or out).strip()[-1000:]}"
            )
        return parse_snapshot(out)

    def resolve_cell(self, cells, wanted):
        for cell in cells:
            if wanted in (cell["name"], cell["uuid"]):
                if cell["uuid"] == CELL0_UUID:
                    raise NovaCellsError("cell0 holds no hosts; name another cell")
                return cell
        known = ", ".join(cell["name"] or cell["uuid"] for cell in cells) or "none"
        raise NovaCellsError(f"no cell named {wanted!r} (cells: {known})")

    def wait_for_registration(self, expected, deadline, snapshot):
        """Waits until every expected host has registered, from snapshot on; returns the snapshot that shows them."""
        while True:
            missing = sorted(set(expected) - {entry["host"] for entry in snapshot["compute_hosts"]})
            if not missing:
                return snapshot
            if time.monotonic() >= deadline:
                what = "service" if self.module.params["by_service"] else "compute node"
                raise NovaCellsError(
                    f"compute hosts not registered in any cell after {self.module.params['timeout']}s: "
                    f"{', '.join(missing)}. nova-compute there has created no {what}: check that it runs "
                    f"(journalctl -u nova-compute) and that its [DEFAULT] host matches the name given here."
                )
            time.sleep(POLL_SECONDS)
            snapshot = self.snapshot(compute_hosts=True)

    def discover(self, cell):
        args = ["discover_hosts", "--verbose"]
        if cell:
            args += ["--cell_uuid", cell["uuid"]]
        if self.module.params["by_service"]:
            args.append("--by-service")
        return parse_discovery(self.manage(*args))


def with_reported_mappings(snapshot, unmapped, reported):
    """The snapshot with the host mappings that discover_hosts reported creating, each in the cell where the snapshot
    found that compute host, so nova's databases need no second read. None when the report does not match the
    snapshot: a host it names registered after the read, or it misses one the read found unmapped (its wording
    changed); the caller then reads the databases again."""
    found = {entry["host"]: entry for entry in snapshot["compute_hosts"] if not entry["mapped"]}
    if not set(unmapped) <= set(reported) or not all(host in found for host in reported):
        return None
    added = [
        {"host": host, "cell_name": found[host]["cell_name"], "cell_uuid": found[host]["cell_uuid"]}
        for host in reported
    ]
    return {**snapshot, "hosts": sorted(snapshot["hosts"] + added, key=lambda entry: entry["host"])}


def run(module):
    params = module.params
    nova = NovaCells(module)
    discovering = params["state"] == "discovered"
    snapshot = nova.snapshot(compute_hosts=discovering)
    cells = snapshot["cells"]
    result = {"changed": False, "cells": cells, "mapped_hosts": []}
    if params["state"] == "present" and params["name"] not in {cell["name"] for cell in cells}:
        result["changed"] = True
        if not module.check_mode:
            nova.manage("create_cell", "--name", params["name"], "--verbose")
            snapshot = nova.snapshot()
            result["cells"] = snapshot["cells"]
            result["msg"] = f"created cell {params['name']}"
        else:
            result["msg"] = f"would create cell {params['name']}"
    if discovering:
        cell = nova.resolve_cell(cells, params["cell"]) if params["cell"] else None
        if params["hosts"] and not module.check_mode:
            snapshot = nova.wait_for_registration(params["hosts"], time.monotonic() + params["timeout"], snapshot)
        # The snapshot reads what discover_hosts would map.
        unmapped = sorted(
            {
                entry["host"]
                for entry in snapshot["compute_hosts"]
                if not entry["mapped"] and (cell is None or entry["cell_uuid"] == cell["uuid"])
            }
        )
        if module.check_mode:
            result["mapped_hosts"] = unmapped
        elif unmapped:  # else skip a nova-manage run that would map nothing
            reported = nova.discover(cell)
            after = with_reported_mappings(snapshot, unmapped, reported)
            if after is None:
                after = nova.snapshot()
                before = {entry["host"] for entry in snapshot["hosts"]}
                reported = sorted(set(reported) | ({entry["host"] for entry in after["hosts"]} - before))
            result["mapped_hosts"] = reported
            snapshot = after
        result["changed"] = bool(result["mapped_hosts"])
    result["hosts"] = snapshot["hosts"]
    if discovering and not module.check_mode:
        unmapped = sorted(set(params["hosts"]) - {entry["host"] for entry in result["hosts"]})
        if unmapped:
            raise NovaCellsError(
                f"compute hosts still not mapped to a cell after discover_hosts: {', '.join(unmapped)}"
                + (f" (only cell {params['cell']} was searched)" if cell else "")
            )
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "discovered"]},
            "name": {"type": "str"},
            "nova_manage": {"type": "str", "default": "nova-manage"},
            "python": {"type": "path"},
            "config_files": {"type": "list", "elements": "path", "default": []},
            "hosts": {"type": "list", "elements": "str", "default": []},
            "cell": {"type": "str"},
            "by_service": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 300},
        },
        required_if=[("state", "present", ["name"])],
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except NovaCellsError as error:
        module.fail_json(msg=str(error))
    if result["mapped_hosts"]:
        verb = "would map" if module.check_mode else "mapped"
        result["msg"] = f"{verb} {', '.join(result['mapped_hosts'])}"
    module.exit_json(**result)


if __name__ == "__main__":
    main()
