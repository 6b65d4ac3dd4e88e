# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Filters that judge the operator's plan for the prechecks (playbooks/tasks/prechecks/): each returns one readable
problem per mistake, empty when the plan is sound. Docs in the sidecars neutron_plan_problems.yml and
ceph_plan_problems.yml."""

import json
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def _entries(value, name):
    value = value or []
    if not isinstance(value, list) or not all(isinstance(entry, Mapping) for entry in value):
        raise AnsibleFilterError(f"neutron_plan_problems: {name} must be a list of mappings")
    return value


def neutron_plan_problems(providers, self_service=None, subnet_pools=None, projects=None, mapped_physnets=None):
    """What is wrong with the networks, routers and subnet pools the neutron role would create."""
    providers = _entries(providers, "neutron_provider_networks")
    self_service = _entries(self_service, "neutron_self_service_networks")
    subnet_pools = _entries(subnet_pools, "neutron_subnet_pools")
    projects = ["admin", *(projects or [])]
    mapped = set(mapped_physnets or [])
    externals = [net.get("name") for net in providers if net.get("external")]
    defaults = [net.get("name") for net in providers if net.get("is_default")]
    default_pools = [pool.get("name") for pool in subnet_pools if pool.get("is_default")]

    problems = [
        f"provider network '{net.get('name')}' uses a physical network that no network host maps to a bridge"
        for net in providers
        if net.get("physical_network") not in mapped
    ]
    problems += [
        f"self-service network '{net.get('name')}' is in a project that is neither admin nor in neutron_projects"
        for net in self_service
        if net.get("project") not in projects
    ]
    problems += [
        f"the router of self-service network '{net.get('name')}' needs an external network of neutron_provider_networks"
        for net in self_service
        if "router" in net and net.get("external_network") not in externals
    ]
    problems += [
        f"provider network '{name}' is_default but not external: only an external network can be the default"
        for name in defaults
        if name not in externals
    ]
    if len(defaults) > 1:
        problems.append("more than one provider network is_default: " + ", ".join(map(str, defaults)))
    if len(default_pools) > 1:
        problems.append("more than one subnet pool is_default: " + ", ".join(map(str, default_pools)))
    problems += [
        f"subnet pool '{pool.get('name', '(unnamed)')}' needs its prefixes (a list of CIDRs)"
        for pool in subnet_pools
        if "prefixes" not in pool
    ]
    if any("name" not in pool for pool in subnet_pools):
        problems.append("every subnet pool needs a name")
    return problems


CEPH_MODES = ("deploy", "external", "none")


def ceph_plan_problems(mode, mon_hosts=None, storage_osds=None, external_mon_hosts=None):
    """What is wrong with the Ceph plan: the mode, the monitors and each storage host's ceph_osds (None when the host
    sets none), or the monitors of an external cluster."""
    mode = mode or "none"
    mon_hosts = mon_hosts or []
    storage_osds = storage_osds or {}
    if mode not in CEPH_MODES:
        return [f"ceph_mode is '{mode}'; use deploy, external or none"]
    if mode == "external":
        if external_mon_hosts:
            return []
        return ["ceph_mode external needs ceph_external_mon_hosts, the monitor addresses of the existing cluster"]
    if mode == "none":
        return []
    problems = []
    if len(mon_hosts) % 2 == 0:
        problems.append(
            f"ceph_mode deploy needs an odd number of hosts (1, 3 or 5) in the ceph_mon group; it has {len(mon_hosts)}"
        )
    bad_hosts = [host for host, osds in storage_osds.items() if osds is not None and not isinstance(osds, list)]
    if bad_hosts:
        problems.append("ceph_osds must be a list of {path, size} on host(s) " + ", ".join(bad_hosts))
    osds = [osd for value in storage_osds.values() if isinstance(value, list) for osd in value]
    bad_osds = [osd for osd in osds if not isinstance(osd, Mapping) or not str(osd.get("path", "")).startswith("/")]
    if bad_osds:
        problems.append(
            "every entry of ceph_osds needs an absolute path (a disk, or a file with a size); got "
            + json.dumps(bad_osds, default=str)
        )
    if not osds and not bad_hosts:
        problems.append("ceph_mode deploy needs at least one entry in ceph_osds on the storage hosts")
    without = [host for host, value in storage_osds.items() if not value]
    if osds and without:
        problems.append(
            "ceph_mode deploy runs OSDs on every storage host (the pools keep their replicas on separate hosts), "
            f"but host(s) {', '.join(without)} have no ceph_osds"
        )
    return problems


class FilterModule:
    def filters(self):
        return {"neutron_plan_problems": neutron_plan_problems, "ceph_plan_problems": ceph_plan_problems}
