# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloud_health
short_description: The health of an OpenStack cloud through its APIs, in one call, as facts to assert on
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - >-
    Reads, with the connection options of openstack.cloud, the service catalog of the token, every compute service
    (nova), network agent (neutron) and volume service (cinder), and probes every catalog endpoint of the chosen
    interfaces. Returns them as lists, and a judgement: RV(healthy) and one readable line per problem in RV(problems).
  - >-
    A problem is a compute service, volume service or network agent that is down (not alive), an endpoint that does
    not answer or answers with an HTTP status of 500 or more, or a list of services or agents that the API refused
    to give.
  - >-
    An endpoint is probed with a GET of its URL (for most services the version document) through the connection's
    session, so TLS is verified with the cloud's CA as openstacksdk verifies it, and without a token (the probe asks
    whether the service answers, not what it answers). Any HTTP answer below 500 counts as reachable: a 300 or 401
    means the service is there. Endpoints are probed in parallel, each URL once.
  - >-
    A service type that is not in the catalog (a cloud without cinder, say) gives an empty list, a line in
    RV(notes) and no problem.
  - It never changes anything.
options:
  probe_endpoints:
    description:
      - Probe the catalog endpoints. With V(false) they are listed with RV(endpoints[].probed=false) and no problem.
    type: bool
    default: true
  probe_interfaces:
    description:
      - The endpoint interfaces to probe. Endpoints of the other interfaces are listed, not probed.
    type: list
    elements: str
    choices: [public, internal, admin]
    default: [public, internal]
  probe_timeout:
    description:
      - Seconds a probe waits for the connection and then for the answer. An endpoint that takes longer is a problem.
    type: float
    default: 10
  ignore_disabled:
    description:
      - >-
        A compute or volume service that is disabled, or a network agent whose admin state is down, is not a problem
        when it is down, as during maintenance. It is still listed.
    type: bool
    default: false
extends_documentation_fragment:
  - openstack.cloud.openstack
  - ansible.builtin.action_common_attributes
  - stackwright.cloud.openstack_api
attributes:
  check_mode:
    details: The module only reads, so check mode does exactly what a normal run does.
notes:
  - >-
    Listing compute services, network agents and volume services needs admin rights (the admin entry of
    C(clouds.yaml) that the keystone role writes). Without them each list is empty and its refusal is a problem.
  - >-
    The module fails, rather than reporting a problem, when it gets no token and catalog from keystone: wrong
    credentials or an unreachable keystone leave nothing to judge.
  - The options O(wait) and O(timeout) of the connection have no effect; O(probe_timeout) bounds each probe.
  - >-
    The host side of the control plane (database, message queue) is not read here; the modules
    M(stackwright.cloud.galera_cluster) and M(stackwright.cloud.rabbitmq_cluster) report it on the hosts.
seealso:
  - module: openstack.cloud.compute_service_info
  - module: openstack.cloud.volume_service_info
  - module: openstack.cloud.catalog_service_info
"""

EXAMPLES = r"""
- name: Read the health of the cloud
  stackwright.cloud.cloud_health:
    cloud: stackwright
  register: health

- name: Fail with the problems when the cloud is not healthy
  ansible.builtin.assert:
    that: health.healthy
    fail_msg: "{{ health.problems }}"
    quiet: true

- name: Check that every compute host has an enabled nova-compute that is up
  ansible.builtin.assert:
    that: >-
      health.compute_services | selectattr('binary', 'eq', 'nova-compute') | selectattr('up') | selectattr('enabled')
      | length == groups['compute'] | length
    quiet: true

- name: During maintenance, only the public endpoints, and disabled services may be down
  stackwright.cloud.cloud_health:
    cloud: stackwright
    probe_interfaces: [public]
    probe_timeout: 5
    ignore_disabled: true
  register: health

- name: Show the slowest endpoint
  ansible.builtin.debug:
    msg: "{{ health.endpoints | selectattr('reachable') | sort(attribute='latency_ms') | last }}"

- name: Wait until the network agents of a rebooted host are back
  stackwright.cloud.cloud_health:
    cloud: stackwright
    probe_endpoints: false
  register: health
  until: health.network_agents | selectattr('host', 'eq', 'cmp2') | rejectattr('up') | length == 0
  retries: 30
  delay: 10
"""

RETURN = r"""
healthy:
  description:
    - Whether the cloud has no problem, that is RV(problems) is empty.
  returned: always
  type: bool
  sample: false
problems:
  description:
    - One readable line per problem, empty for a healthy cloud.
  returned: always
  type: list
  elements: str
  sample:
    - nova-compute on cmp2 is down (last report 2026-05-09T10:41:07.000000)
    - ovn-controller on net1 is down (OVN Controller agent, last heartbeat 2026-05-09 10:40:55)
    - image (glance) internal endpoint https://10.89.84.250:9292 answers HTTP 503
    - block-storage (cinderv3) public endpoint https://10.89.84.251:8776/v3/4f6e0b1d2c3a4e5f8a9b0c1d2e3f4a5b gave no
      answer within 10 s
notes:
  description:
    - What was not checked and why, such as a service type missing from the catalog.
  returned: always
  type: list
  elements: str
  sample:
    - "no volume service in the catalog (block-storage, volumev3, volumev2, volume): volume services not checked"
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "unhealthy, 1 problem: nova-compute on cmp2 is down (forced down)"
summary:
  description:
    - Counts per list, for a short report. Each list has C(total); the service lists also C(up), C(down) and
      C(disabled); RV(endpoints) also C(probed), C(reachable) and C(unreachable).
  returned: always
  type: dict
  sample:
    endpoints: {total: 18, probed: 12, reachable: 12, unreachable: 0}
    compute_services: {total: 5, up: 5, down: 0, disabled: 0}
    network_agents: {total: 4, up: 4, down: 0, disabled: 0}
    volume_services: {total: 2, up: 2, down: 0, disabled: 0}
endpoints:
  description: Every endpoint of the token's catalog, sorted by service type, region and interface.
  returned: always
  type: list
  elements: dict
  contains:
    service_type:
      description: The service type in the catalog.
      type: str
      sample: compute
    service_name:
      description: The service name in the catalog.
      type: str
      sample: nova
    interface:
      description: V(public), V(internal) or V(admin).
      type: str
      sample: public
    url:
      description: The endpoint's URL, as the catalog gives it (project ids substituted).
      type: str
      sample: https://10.89.84.251:8774/v2.1
    region:
      description: The endpoint's region.
      type: str
      sample: RegionOne
    probed:
      description: Whether the endpoint was probed (see O(probe_endpoints) and O(probe_interfaces)).
      type: bool
      sample: true
    reachable:
      description: Whether it answered with an HTTP status below 500. Null when not probed.
      type: bool
      sample: true
    status_code:
      description: The HTTP status of the answer (after redirects). Null without an answer.
      type: int
      sample: 200
    latency_ms:
      description:
        - Milliseconds until the answer, or until the probe failed (a timeout shows about O(probe_timeout)). Null when
          not probed.
      type: float
      sample: 12.4
    error:
      description: Why the endpoint is not reachable, null when it is.
      type: str
      sample: "Request to https://10.89.84.250:9292 timed out"
compute_services:
  description: Every compute service (nova-compute, nova-conductor, nova-scheduler, ...), sorted by binary and host.
  returned: always
  type: list
  elements: dict
  contains:
    binary:
      description: The service's binary.
      type: str
      sample: nova-compute
    host:
      description: The host it runs on, as nova names it.
      type: str
      sample: cmp2
    status:
      description: V(enabled) or V(disabled), as nova says.
      type: str
      sample: enabled
    state:
      description: V(up) or V(down), as nova says.
      type: str
      sample: down
    enabled:
      description: Whether RV(compute_services[].status) is V(enabled).
      type: bool
      sample: true
    up:
      description: Whether RV(compute_services[].state) is V(up).
      type: bool
      sample: false
    updated_at:
      description: When the service last reported.
      type: str
      sample: "2026-05-09T10:41:07.000000"
    disabled_reason:
      description: Why it was disabled, null when it is not or no reason was given.
      type: str
      sample: null
    forced_down:
      description: Whether an operator forced it down (for an evacuation).
      type: bool
      sample: false
    availability_zone:
      description: Its availability zone.
      type: str
      sample: nova
    id:
      description: The service's id.
      type: str
network_agents:
  description: Every network agent (with OVN, the ovn-controller and metadata agents), sorted by binary and host.
  returned: always
  type: list
  elements: dict
  contains:
    binary:
      description: The agent's binary.
      type: str
      sample: ovn-controller
    agent_type:
      description: The agent's type.
      type: str
      sample: OVN Controller agent
    host:
      description: The host it runs on.
      type: str
      sample: cmp1
    admin_state_up:
      description: Whether its admin state is up.
      type: bool
      sample: true
    alive:
      description: Whether neutron heard from it recently.
      type: bool
      sample: true
    enabled:
      description: Same as RV(network_agents[].admin_state_up).
      type: bool
      sample: true
    up:
      description: Same as RV(network_agents[].alive).
      type: bool
      sample: true
    updated_at:
      description: Its last heartbeat.
      type: str
      sample: "2026-05-09 10:41:02"
    availability_zone:
      description: Its availability zone, for the agents that have one.
      type: str
    id:
      description: The agent's id.
      type: str
volume_services:
  description: Every volume service (cinder-scheduler, cinder-volume, cinder-backup), sorted by binary and host.
  returned: always
  type: list
  elements: dict
  contains:
    binary:
      description: The service's binary.
      type: str
      sample: cinder-volume
    host:
      description: The host it runs on; for cinder-volume, host@backend.
      type: str
      sample: stor1@rbd
    status:
      description: V(enabled) or V(disabled), as cinder says.
      type: str
      sample: enabled
    state:
      description: V(up) or V(down), as cinder says.
      type: str
      sample: up
    enabled:
      description: Whether RV(volume_services[].status) is V(enabled).
      type: bool
      sample: true
    up:
      description: Whether RV(volume_services[].state) is V(up).
      type: bool
      sample: true
    updated_at:
      description: When the service last reported.
      type: str
      sample: "2026-05-09T10:41:05.000000"
    disabled_reason:
      description: Why it was disabled, null when it is not or no reason was given.
      type: str
      sample: null
    availability_zone:
      description: Its availability zone.
      type: str
      sample: nova
"""

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule

try:
    from keystoneauth1 import exceptions as ksa_exceptions
except ImportError:  # OpenStackModule fails first, saying openstacksdk is missing
    ksa_exceptions = None

# keystoneauth raises these for connection-level failures; openstacksdk does not wrap them.
KSA_ERRORS = (ksa_exceptions.ClientException,) if ksa_exceptions else ()

# Result key -> (words for messages, catalog types that offer it; aliases as os-service-types lists them).
SERVICE_LISTS = {
    "compute_services": ("compute", ("compute",)),
    "network_agents": ("network", ("network",)),
    "volume_services": ("volume", ("block-storage", "volumev3", "volumev2", "volume")),
}
MAX_PROBE_THREADS = 8
# The readable core of a socket or TLS error inside keystoneauth's long messages.
ERRNO_REASON = re.compile(r"\[Errno -?\d+\] ([^'\"]+)")
SSL_REASON = re.compile(r"\[SSL: \w+\] ([^'\"]+?)\s*(?:\(_ssl\.c:\d+\))?['\"]")


def compute_service_entry(service):
    return {
        "binary": service.binary,
        "host": service.host,
        "status": service.status,
        "state": service.state,
        "enabled": service.status == "enabled",
        "up": service.state == "up",
        "updated_at": service.updated_at,
        "disabled_reason": service.disabled_reason,
        "forced_down": bool(service.is_forced_down),
        "availability_zone": service.availability_zone,
        "id": service.id,
    }


def network_agent_entry(agent):
    return {
        "binary": agent.binary,
        "agent_type": agent.agent_type,
        "host": agent.host,
        "admin_state_up": agent.is_admin_state_up,
        "alive": agent.is_alive,
        "enabled": bool(agent.is_admin_state_up),
        "up": bool(agent.is_alive),
        "updated_at": agent.last_heartbeat_at,
        "availability_zone": agent.availability_zone,
        "id": agent.id,
    }


def volume_service_entry(service):
    return {
        "binary": service.binary,
        "host": service.host,
        "status": service.status,
        "state": service.state,
        "enabled": service.status == "enabled",
        "up": service.state == "up",
        "updated_at": service.updated_at,
        "disabled_reason": service.disabled_reason,
        "availability_zone": service.availability_zone,
    }


def service_problem(kind, entry, ignore_disabled):
    """The problem line of a compute service, network agent or volume service, or None."""
    if entry["up"] or (ignore_disabled and not entry["enabled"]):
        return None
    details = []
    if kind == "network_agents":
        details.append(entry["agent_type"])
    if entry.get("forced_down"):
        details.append("forced down")
    if not entry["enabled"]:
        reason = entry.get("disabled_reason")
        details.append(f"disabled: {reason}" if reason else "disabled")
    if entry["updated_at"]:
        details.append(f"{'last heartbeat' if kind == 'network_agents' else 'last report'} {entry['updated_at']}")
    suffix = f" ({', '.join(str(detail) for detail in details if detail)})" if details else ""
    return f"{entry['binary']} on {entry['host']} is down{suffix}"


def catalog_endpoints(catalog):
    endpoints = []
    for service in catalog:
        for endpoint in service.get("endpoints", []):
            endpoints.append(
                {
                    "service_type": service.get("type"),
                    "service_name": service.get("name"),
                    "interface": endpoint.get("interface"),
                    "url": endpoint.get("url"),
                    "region": endpoint.get("region_id") or endpoint.get("region"),
                    "probed": False,
                    "reachable": None,
                    "status_code": None,
                    "latency_ms": None,
                    "error": None,
                }
            )
    return sorted(endpoints, key=lambda e: tuple(e[k] or "" for k in ("service_type", "region", "interface", "url")))


def short_reason(error):
    text = str(error)
    match = ERRNO_REASON.search(text) or SSL_REASON.search(text)
    if match:
        reason = match.group(1).strip()
        return f"TLS failed: {reason}" if match.re is SSL_REASON else reason
    return text


def elapsed_ms(start):
    return round((time.monotonic() - start) * 1000, 1)


def probe(session, url, timeout):
    """GET url without a token; the answer's status, or why there was none, and the time it took."""
    start = time.monotonic()
    try:
        # Version documents need no token, and a probe must not hand the admin token to every URL.
        response = session.get(
            url,
            authenticated=False,
            raise_exc=False,
            timeout=timeout,
            connect_retries=0,
            headers={"Accept": "application/json"},
        )
    except KSA_ERRORS as error:
        timed_out = isinstance(error, ksa_exceptions.ConnectTimeout)
        return {
            "reachable": False,
            "status_code": None,
            "latency_ms": elapsed_ms(start),
            "error": str(error),
            "reason": f"gave no answer within {timeout:g} s" if timed_out else f"is unreachable: {short_reason(error)}",
        }
    status = response.status_code
    return {
        "reachable": status < 500,
        "status_code": status,
        "latency_ms": elapsed_ms(start),
        "error": None if status < 500 else f"HTTP {status}",
        "reason": f"answers HTTP {status}",
    }


def endpoint_problem(endpoint, reason, with_region):
    if endpoint["reachable"] is not False:
        return None
    where = f" in {endpoint['region']}" if with_region else ""
    name = f" ({endpoint['service_name']})" if endpoint["service_name"] else ""
    return f"{endpoint['service_type']}{name} {endpoint['interface']} endpoint {endpoint['url']}{where} {reason}"


def count(entries):
    return {
        "total": len(entries),
        "up": sum(1 for e in entries if e["up"]),
        "down": sum(1 for e in entries if not e["up"]),
        "disabled": sum(1 for e in entries if not e["enabled"]),
    }


class CloudHealthModule(OpenStackModule):
    argument_spec: ClassVar[dict] = dict(
        probe_endpoints=dict(type="bool", default=True),
        probe_interfaces=dict(
            type="list", elements="str", choices=["public", "internal", "admin"], default=["public", "internal"]
        ),
        probe_timeout=dict(type="float", default=10),
        ignore_disabled=dict(type="bool", default=False),
    )
    module_kwargs: ClassVar[dict] = dict(supports_check_mode=True)

    def read_catalog(self):
        try:
            return self.conn.service_catalog
        except (self.sdk.exceptions.SDKException, *KSA_ERRORS) as error:
            self.fail_json(msg=f"no token and service catalog from keystone, nothing to judge: {error}")

    def list_services(self, key):
        """The entries of one list and the problem of listing it, if any."""
        if key == "compute_services":
            fetch, entry = self.conn.compute.services, compute_service_entry
        elif key == "network_agents":
            fetch, entry = self.conn.network.agents, network_agent_entry
        else:
            fetch, entry = self.conn.block_storage.services, volume_service_entry
        try:
            entries = [entry(item) for item in fetch()]
        except (self.sdk.exceptions.SDKException, *KSA_ERRORS) as error:
            return [], f"{key.replace('_', ' ')} could not be listed: {error}"
        return sorted(entries, key=lambda e: (e["binary"] or "", e["host"] or "")), None

    def probe_catalog(self, endpoints):
        interfaces = set(self.params["probe_interfaces"])
        chosen = [e for e in endpoints if e["interface"] in interfaces and e["url"]]
        urls = sorted({e["url"] for e in chosen})
        if not urls:
            return
        timeout = self.params["probe_timeout"]
        # Parallel, so that a cloud whose VIP is gone answers in one timeout, not one per endpoint.
        session = self.conn.session
        with ThreadPoolExecutor(max_workers=min(MAX_PROBE_THREADS, len(urls))) as pool:
            results = dict(zip(urls, pool.map(lambda url: probe(session, url, timeout), urls), strict=True))
        for endpoint in chosen:
            endpoint.update(results[endpoint["url"]], probed=True)

    def run(self):
        catalog = self.read_catalog()
        present_types = {service.get("type") for service in catalog}
        result = {"changed": False, "problems": [], "notes": []}

        endpoints = catalog_endpoints(catalog)
        if self.params["probe_endpoints"]:
            self.probe_catalog(endpoints)
        else:
            result["notes"].append("endpoints not probed (probe_endpoints is false)")
        with_region = len({e["region"] for e in endpoints}) > 1
        for endpoint in endpoints:
            problem = endpoint_problem(endpoint, endpoint.pop("reason", None), with_region)
            if problem:
                result["problems"].append(problem)
        result["endpoints"] = endpoints

        summary = {
            "endpoints": {
                "total": len(endpoints),
                "probed": sum(1 for e in endpoints if e["probed"]),
                "reachable": sum(1 for e in endpoints if e["reachable"] is True),
                "unreachable": sum(1 for e in endpoints if e["reachable"] is False),
            }
        }
        for key, (words, types) in SERVICE_LISTS.items():
            entries = []
            if present_types.isdisjoint(types):
                result["notes"].append(
                    f"no {words} service in the catalog ({', '.join(types)}): {key.replace('_', ' ')} not checked"
                )
            else:
                entries, problem = self.list_services(key)
                if problem:
                    result["problems"].append(problem)
                for entry in entries:
                    problem = service_problem(key, entry, self.params["ignore_disabled"])
                    if problem:
                        result["problems"].append(problem)
            result[key] = entries
            summary[key] = count(entries)
        result["summary"] = summary

        problems = result["problems"]
        result["healthy"] = not problems
        if problems:
            plural = "s" if len(problems) > 1 else ""
            result["msg"] = f"unhealthy, {len(problems)} problem{plural}: {'; '.join(problems)}"
        else:
            reachable = summary["endpoints"]["reachable"]
            parts = [f"{reachable} endpoints reachable"] if self.params["probe_endpoints"] else []
            parts += [f"{summary[key]['up']} {key.replace('_', ' ')} up" for key in SERVICE_LISTS]
            result["msg"] = "healthy: " + ", ".join(parts)
        self.exit_json(**result)


def main():
    module = CloudHealthModule()
    module()


if __name__ == "__main__":
    main()
