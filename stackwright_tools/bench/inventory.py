# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Inventories the multinode parts deploy: copies of an inventory directory with N compute hosts."""

import contextlib
import ipaddress
import re
import shutil

import yaml

from stackwright_tools.bench.errors import BenchError

# What a deploy writes into an inventory directory (the cloud's identity, not part of the inventory's source).
GENERATED_INVENTORY_FILES = ("secrets.yml", "pki", "clouds.yaml", "admin-openrc.sh", "swift-rings")


def copy_inventory(source, dest, keep_state):
    """Copy an inventory directory (symlinks resolved); without keep_state, leave out what a deploy generated."""
    if dest.exists():
        shutil.rmtree(dest)
    ignore = None if keep_state else shutil.ignore_patterns(*GENERATED_INVENTORY_FILES)
    shutil.copytree(source, dest, symlinks=False, ignore=ignore)


def _group_vars(inventory):
    """Merged plain values of group_vars/all (used only for the networks and VIPs of the lab)."""
    values = {}
    directory = inventory / "group_vars"
    files = sorted((directory / "all").glob("*.y*ml")) if (directory / "all").is_dir() else []
    files += [path for path in (directory / "all.yml", directory / "all.yaml") if path.is_file()]
    for path in files:
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict):
            values.update(data)
    return values


def _walk_groups(group, name="all"):
    yield name, group or {}
    for child, body in ((group or {}).get("children") or {}).items():
        yield from _walk_groups(body, child)


def _network(value, fallback_address):
    try:
        return ipaddress.ip_network(str(value))
    except ValueError:
        return ipaddress.ip_network(f"{fallback_address}/24", strict=False)


def _next_name(names, taken):
    """sw-cmp2 -> sw-cmp3 (same prefix and digit width), skipping names already in the inventory."""
    match = re.match(r"^(.*?)(\d+)$", names[-1])
    prefix, width = (match.group(1), len(match.group(2))) if match else (names[-1] + "-", 1)
    numbers = [int(m.group(2)) for m in (re.match(r"^(.*?)(\d+)$", n) for n in names) if m and m.group(1) == prefix]
    number = max(numbers, default=0) + 1
    while f"{prefix}{number:0{width}d}" in taken:
        number += 1
    return f"{prefix}{number:0{width}d}"


def set_compute_hosts(inventory, computes, source_label=""):
    """Make hosts.yml of an inventory directory list exactly `computes` hosts in its compute group.

    Existing compute hosts are kept in file order (the first ones when there are fewer); new ones copy the first
    compute host's variables with the next free management (and tunnel) address. Returns the new host names.
    """
    hosts_file = inventory / "hosts.yml"
    data = yaml.safe_load(hosts_file.read_text())
    groups = dict(_walk_groups(data.get("all")))
    compute = groups.get("compute") or {}
    current = compute.get("hosts") or {}
    if not current:
        raise BenchError(f"{hosts_file} has no hosts in a compute group")
    for group, body in groups.items():
        shared = set(body.get("hosts") or {}) & set(current) if group != "compute" else set()
        if shared:
            raise BenchError(f"{', '.join(sorted(shared))} in {hosts_file} is in compute and {group}: not multinode")
    names = list(current)
    template = dict(current[names[0]] or {})
    taken_names = {host for body in groups.values() for host in (body.get("hosts") or {})}
    all_vars = [vars_ or {} for body in groups.values() for vars_ in (body.get("hosts") or {}).values()]
    settings = _group_vars(inventory)
    used = set()
    for vars_ in all_vars:
        for key in ("ansible_host", "management_address", "tunnel_address"):
            with contextlib.suppress(ValueError):
                used.add(ipaddress.ip_address(str(vars_.get(key))))
    for key in ("internal_vip_address", "public_vip_address"):
        with contextlib.suppress(ValueError):
            used.add(ipaddress.ip_address(str(settings.get(key))))
    first_address = template.get("management_address") or template.get("ansible_host")
    if not first_address:
        raise BenchError(f"{names[0]} in {hosts_file} has no management_address")
    management = _network(settings.get("management_network"), first_address)
    tunnel = (
        _network(settings.get("tunnel_network"), template["tunnel_address"]) if "tunnel_address" in template else None
    )

    wanted = {name: current[name] for name in names[:computes]}
    added = []
    offset = max(
        int(ipaddress.ip_address(str((current[n] or {}).get("management_address", first_address))))
        - int(management.network_address)
        for n in names
    )
    while len(wanted) < computes:
        offset += 1
        if offset >= management.num_addresses - 1 or (tunnel and offset >= tunnel.num_addresses - 1):
            raise BenchError(f"no free address left in {management} for {computes} compute hosts")
        address = management.network_address + offset
        tunnel_address = tunnel.network_address + offset if tunnel else None
        if address in used or tunnel_address in used:
            continue
        name = _next_name(names + added, taken_names)
        vars_ = dict(template)
        for key in ("ansible_host", "management_address"):
            if key in vars_:
                vars_[key] = str(address)
        if tunnel_address:
            vars_["tunnel_address"] = str(tunnel_address)
        wanted[name] = vars_
        added.append(name)
        taken_names.add(name)
    compute["hosts"] = wanted
    origin = f" from {source_label}" if source_label else ""
    header = f"---\n# Generated by scripts/bench{origin}: {computes} compute host(s).\n"
    hosts_file.write_text(header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=160))
    return added


def generate_inventory(source, dest, computes, keep_state=False):
    """A copy of a multinode inventory with `computes` compute hosts; returns {"path", "computes", "added"}."""
    copy_inventory(source, dest, keep_state)
    added = set_compute_hosts(dest, computes, source_label=str(source))
    data = yaml.safe_load((dest / "hosts.yml").read_text())
    return {"path": str(dest), "computes": list(dict(_walk_groups(data["all"]))["compute"]["hosts"]), "added": added}


def compute_hosts(inventory):
    """Compute host names of an inventory directory's hosts.yml."""
    data = yaml.safe_load((inventory / "hosts.yml").read_text())
    return list((dict(_walk_groups(data["all"])).get("compute") or {}).get("hosts") or {})
