# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: network_agent
short_description: Enable, disable or delete the Neutron agents of a host
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - Acts on every Neutron agent of O(host), or on those of the types in O(agent_type), and reports them all.
  - >-
    O(state=enabled) and O(state=disabled) set the administrative state of the agents (C(admin_state_up)). A
    disabled DHCP or L3 agent gets no new networks or routers; what it already hosts stays where it is.
  - >-
    ML2/OVN agents (V(OVN Controller agent), V(OVN Controller Gateway agent), V(OVN Metadata agent),
    V(OVN Neutron agent)) have no administrative state: neutron builds them from the chassis of the OVN southbound
    database, always reports C(admin_state_up) true, and refuses to set it false (C(OVN agent status cannot be
    updated)). O(state=enabled) therefore never changes them, and O(state=disabled) fails, before it changes
    anything, when it would have to disable one.
  - >-
    O(state=absent) deletes the agent records. An alive agent registers itself again (its next heartbeat; an alive
    C(ovn-controller) re-creates its chassis), so the module refuses, before it deletes anything, while one of them
    is alive. See O(force).
  - >-
    With ML2/OVN, neutron deletes an OVN agent by deleting its chassis from the southbound database, which removes
    every OVN agent of that chassis. The module takes them into its alive check and reports them in
    RV(also_removed).
  - Reports C(changed) only when an agent differs from what is asked.
options:
  host:
    description:
      - The host of the agents, as C(openstack network agent list) shows it (for ML2/OVN, the host name of the
        chassis).
    type: str
    required: true
  agent_type:
    description:
      - Act only on agents of these types, for example V(DHCP agent), V(L3 agent), V(Open vSwitch agent),
        V(OVN Controller agent). Unset takes every agent of O(host).
    type: list
    elements: str
  state:
    description:
      - V(enabled) and V(disabled) set C(admin_state_up) of the agents. They fail when O(host) has no such agent.
      - V(absent) deletes the agents, and is unchanged when there is none.
    type: str
    choices: [enabled, disabled, absent]
    default: enabled
  force:
    description:
      - With O(state=absent), delete alive agents too. They are likely to come back at once.
    type: bool
    default: false
extends_documentation_fragment:
  - openstack.cloud.openstack
  - ansible.builtin.action_common_attributes
  - stackwright.cloud.openstack_api
attributes:
  check_mode:
    details: Runs every check and reports what would change, and the agents as they would be, without a write call.
notes:
  - Needs admin credentials of the cloud (neutron's default policy allows these calls to admins only).
  - >-
    With ML2/OVN, keep new instances off a compute host by disabling its nova-compute service
    (M(openstack.cloud.compute_service)), and move router gateways off a gateway chassis by removing
    C(enable-chassis-as-gw) from its C(ovn-cms-options); its OVN agents cannot be disabled.
seealso:
  - name: Networking API, agents
    description: The agent records and their administrative state.
    link: https://docs.openstack.org/api-ref/network/v2/#agents
"""

EXAMPLES = r"""
- name: Stop scheduling new networks and routers to the agents of net1
  stackwright.cloud.network_agent:
    cloud: admin
    host: net1
    agent_type:
      - DHCP agent
      - L3 agent
    state: disabled

- name: Delete the OVN agents of the decommissioned cmp3 (ovn-controller stopped there)
  stackwright.cloud.network_agent:
    cloud: admin
    host: cmp3
    state: absent
  register: removed

- name: Show what went
  ansible.builtin.debug:
    msg: "{{ (removed.agents + removed.also_removed) | map(attribute='agent_type') }}"
"""

RETURN = r"""
agents:
  description:
    - Every agent of O(host) that matches O(agent_type), after the task. In check mode, as it would be after it.
    - With O(state=absent), as they were before the deletion.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Id of the agent (for an OVN controller agent, the chassis name).
      type: str
      sample: 2d6a9f0e-3c1b-4f5e-8a7d-9b0c1e2f3a4b
    agent_type:
      description: Type of the agent.
      type: str
      sample: OVN Controller agent
    binary:
      description: Program of the agent.
      type: str
      sample: ovn-controller
    host:
      description: Host of the agent.
      type: str
      sample: cmp3
    alive:
      description: Whether the agent reported in within neutron's C(agent_down_time).
      type: bool
      sample: false
    admin_state_up:
      description: Administrative state of the agent (always true for ML2/OVN agents).
      type: bool
      sample: true
also_removed:
  description:
    - With O(state=absent), OVN agents outside O(agent_type) that go with the chassis of a deleted OVN agent, as
      they were before. Empty otherwise.
  returned: always
  type: list
  elements: dict
  sample: []
msg:
  description: What the task did, or would do in check mode.
  returned: always
  type: str
  sample: "net1: DHCP agent, L3 agent disabled"
"""

from typing import ClassVar

from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule

# Agent types that ML2/OVN derives from the chassis of the southbound database (neutron.common.ovn.constants).
OVN_AGENT_TYPES = frozenset(
    ("OVN Controller agent", "OVN Controller Gateway agent", "OVN Metadata agent", "OVN Neutron agent")
)


def agent_dict(agent):
    return {
        "id": agent.id,
        "agent_type": agent.agent_type,
        "binary": agent.binary,
        "host": agent.host,
        "alive": agent.is_alive,
        "admin_state_up": agent.is_admin_state_up,
    }


def chassis_of(agent):
    if agent.agent_type not in OVN_AGENT_TYPES:
        return None
    return (agent.configuration or {}).get("chassis_name")


def names(agents):
    return ", ".join(f"{agent.agent_type} {agent.id}" for agent in agents)


class NetworkAgentModule(OpenStackModule):
    argument_spec: ClassVar[dict] = dict(
        host=dict(type="str", required=True),
        agent_type=dict(type="list", elements="str"),
        state=dict(type="str", default="enabled", choices=["enabled", "disabled", "absent"]),
        force=dict(type="bool", default=False),
    )
    module_kwargs: ClassVar[dict] = dict(supports_check_mode=True)

    def run(self):
        host, types = self.params["host"], self.params["agent_type"]
        on_host = list(self.conn.network.agents(host=host))
        # Neutron filters on host exactly; the type filter is applied here so that a miss can name the types.
        matched = [agent for agent in on_host if agent.host == host and (not types or agent.agent_type in types)]
        if self.params["state"] == "absent":
            self.absent(host, matched, on_host)
        if not matched:
            self.fail_missing(host, types, on_host)
        self.admin_state(host, matched, self.params["state"] == "enabled")

    def fail_missing(self, host, types, on_host):
        if on_host:
            present = sorted({agent.agent_type for agent in on_host})
            self.fail_json(
                msg=f"host {host!r} has no agent of type {', '.join(types)}; its agents: {', '.join(present)}"
            )
        hosts = sorted({agent.host for agent in self.conn.network.agents()})
        self.fail_json(
            msg=f"neutron has no agent on host {host!r} (hosts with agents: {', '.join(hosts) or 'none'}). Give the "
            "host as 'openstack network agent list' shows it; for ML2/OVN that is the host name of the chassis "
            "(ovs-vsctl get Open_vSwitch . external_ids:hostname)."
        )

    def admin_state(self, host, matched, wanted):
        verb = "enabled" if wanted else "disabled"
        to_change = [agent for agent in matched if agent.is_admin_state_up != wanted]
        ovn = [agent for agent in to_change if agent.agent_type in OVN_AGENT_TYPES]
        if ovn:
            self.fail_json(
                msg=f"cannot set {names(ovn)} on {host} {verb}: ML2/OVN agents have no administrative state, and "
                "neutron refuses to set it ('OVN agent status cannot be updated'). Nothing was changed. To keep new "
                "instances off the host, disable its nova-compute service (openstack.cloud.compute_service, status: "
                "disabled); to move router gateways off a gateway chassis, remove enable-chassis-as-gw from its "
                "ovn-cms-options. Use agent_type to act on the host's other agents only.",
                agents=[agent_dict(agent) for agent in matched],
            )
        result = {agent.id: agent_dict(agent) for agent in matched}
        if not to_change:
            self.exit_json(
                changed=False, agents=list(result.values()), also_removed=[], msg=f"{host}: agents already {verb}"
            )
        changed_types = ", ".join(sorted({agent.agent_type for agent in to_change}))
        if self.check_mode:
            for agent in to_change:
                result[agent.id]["admin_state_up"] = wanted
            self.exit_json(
                changed=True,
                agents=list(result.values()),
                also_removed=[],
                msg=f"{host}: would set {changed_types} {verb}",
            )
        done = []
        for agent in to_change:
            try:
                updated = self.conn.network.update_agent(agent, admin_state_up=wanted)
            except self.sdk.exceptions.SDKException as error:
                self.fail_json(
                    msg=f"neutron refused to set {agent.agent_type} {agent.id} on {host} {verb}: {error}"
                    + (f" (already {verb}: {names(done)})" if done else ""),
                    changed=bool(done),
                    agents=list(result.values()),
                )
            result[agent.id] = agent_dict(updated)
            done.append(agent)
        self.exit_json(
            changed=True, agents=list(result.values()), also_removed=[], msg=f"{host}: {changed_types} {verb}"
        )

    def absent(self, host, matched, on_host):
        if not matched:
            self.exit_json(changed=False, agents=[], also_removed=[], msg=f"{host}: no such agent, nothing to delete")
        chassis = {chassis_of(agent) for agent in matched} - {None}
        picked = {agent.id for agent in matched}
        also = [agent for agent in on_host if agent.id not in picked and chassis_of(agent) in chassis]
        alive = [agent for agent in matched + also if agent.is_alive]
        if alive and not self.params["force"]:
            self.fail_json(
                msg=f"not deleting agents of {host}: {names(alive)} still alive. An alive agent registers itself "
                "again (at its next heartbeat; an alive ovn-controller re-creates its chassis), so the deletion "
                "would not last. Stop the agents on the host and wait until neutron shows them not alive "
                "(agent_down_time), or set force: true.",
                agents=[agent_dict(agent) for agent in matched],
            )
        result = {
            "agents": [agent_dict(agent) for agent in matched],
            "also_removed": [agent_dict(agent) for agent in also],
        }
        deleted = ", ".join(sorted({agent.agent_type for agent in matched + also}))
        if self.check_mode:
            self.exit_json(changed=True, msg=f"{host}: would delete {deleted}", **result)
        done = []
        for agent in matched:
            try:
                # A missing agent went with a chassis deleted just before: that is the goal.
                self.conn.network.delete_agent(agent, ignore_missing=True)
            except self.sdk.exceptions.BadRequestException as error:
                hint = ""
                if chassis_of(agent):
                    hint = (
                        " This neutron cannot delete OVN agents (older releases refuse); delete the chassis from the "
                        f"OVN southbound database instead (ovn-sbctl chassis-del {chassis_of(agent)})."
                    )
                self.fail_json(
                    msg=f"neutron refused to delete {agent.agent_type} {agent.id}: {error}.{hint}"
                    + (f" Already deleted: {names(done)}." if done else ""),
                    changed=bool(done),
                    **result,
                )
            done.append(agent)
        self.exit_json(changed=True, msg=f"{host}: deleted {deleted}", **result)


def main():
    module = NetworkAgentModule()
    module()


if __name__ == "__main__":
    main()
