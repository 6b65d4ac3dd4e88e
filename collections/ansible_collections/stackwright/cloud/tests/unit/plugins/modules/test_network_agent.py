# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.network_agent against a fake openstacksdk connection whose network proxy answers as neutron
does: database agents (DHCP, L3, Open vSwitch) and ML2/OVN agents built from southbound chassis, which always
report admin_state_up true, refuse to be disabled and are deleted with their whole chassis."""

from types import SimpleNamespace

import openstack
import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import network_agent
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module
from openstack.network.v2.agent import Agent

# Every Resource openstacksdk 4.x builds warns so; the fake builds them as the SDK does.
pytestmark = pytest.mark.filterwarnings("ignore:The _compute_attributes method is deprecated")

OVN_TYPES = {"OVN Controller agent", "OVN Controller Gateway agent", "OVN Metadata agent", "OVN Neutron agent"}
CMP1_CHASSIS = "7c1f5a0e-2b4d-4e8f-9a6c-3d5e7f9b1c01"
NET1_CHASSIS = "4e2a9b7c-6d1f-4a3e-8b5c-9f0d2e4a6b02"
CMP1_METADATA = "b3c4d5e6-0000-4000-8000-0000000000m1"
NET1_BGP = "d1e2f3a4-0000-4000-8000-00000000bgp1"
OVS_DHCP = "a0000000-0000-4000-8000-00000000dhcp"
OVS_L3 = "a0000000-0000-4000-8000-0000000000l3"
OVS_OVS = "a0000000-0000-4000-8000-000000000ovs"


def record(agent_id, agent_type, binary, host, alive=True, admin_state_up=True, chassis=None):
    configurations = {"chassis_name": chassis, "bridge-mappings": "physnet1:br-ex"} if chassis else {}
    return {
        "id": agent_id, "agent_type": agent_type, "binary": binary, "host": host, "alive": alive,
        "admin_state_up": admin_state_up, "configurations": configurations, "topic": "n/a" if chassis else "dhcp_agent",
    }  # fmt: skip


class FakeNetwork:
    """The network proxy of a connection; writes are recorded and applied as neutron applies them."""

    def __init__(self):
        self.records = {
            r["id"]: r
            for r in (
                record(CMP1_CHASSIS, "OVN Controller agent", "ovn-controller", "cmp1", chassis=CMP1_CHASSIS),
                record(CMP1_METADATA, "OVN Metadata agent", "neutron-ovn-metadata-agent", "cmp1",
                       chassis=CMP1_CHASSIS),
                record(NET1_CHASSIS, "OVN Controller Gateway agent", "ovn-controller", "net1", chassis=NET1_CHASSIS),
                record(NET1_BGP, "BGP dynamic routing agent", "neutron-bgp-dragent", "net1"),
                record(OVS_DHCP, "DHCP agent", "neutron-dhcp-agent", "net2"),
                record(OVS_L3, "L3 agent", "neutron-l3-agent", "net2", admin_state_up=False),
                record(OVS_OVS, "Open vSwitch agent", "neutron-openvswitch-agent", "net2"),
            )
        }  # fmt: skip
        self.ovn_delete_refused = False  # neutron releases that refused to delete OVN agents
        self.update_fails = {}  # agent id -> the exception neutron answers with
        self.reads = []
        self.writes = []

    def agents(self, **query):
        assert set(query) <= {"host"}
        self.reads.append(("agents", query))
        return (Agent(**r) for r in list(self.records.values()) if all(r[k] == v for k, v in query.items()))

    def update_agent(self, agent, **attrs):
        self.writes.append(("update_agent", agent.id, attrs))
        if agent.id in self.update_fails:
            raise self.update_fails[agent.id]
        current = self.records[agent.id]
        if current["agent_type"] in OVN_TYPES and not attrs.get("admin_state_up", True):
            raise openstack.exceptions.BadRequestException(message="OVN agent status cannot be updated")
        current.update(attrs)
        return Agent(**current)

    def delete_agent(self, agent, ignore_missing=True):
        self.writes.append(("delete_agent", agent.id, {"ignore_missing": ignore_missing}))
        current = self.records.get(agent.id)
        if current is None:
            if ignore_missing:
                return
            raise openstack.exceptions.NotFoundException(message=f"Agent {agent.id} could not be found.")
        chassis = current["configurations"].get("chassis_name")
        if current["agent_type"] in OVN_TYPES:
            if self.ovn_delete_refused:
                raise openstack.exceptions.BadRequestException(message="OVN agents cannot be deleted")
            # Neutron deletes the chassis, and with it every OVN agent built from it.
            for other in [r for r in self.records.values() if r["configurations"].get("chassis_name") == chassis]:
                del self.records[other["id"]]
        else:
            del self.records[agent.id]


@pytest.fixture
def neutron(monkeypatch):
    network = FakeNetwork()
    conn = SimpleNamespace(network=network)
    monkeypatch.setattr(openstack, "connect", lambda **_kwargs: conn)
    patch_module(monkeypatch, network)
    return network


def run_module(**args):
    with patch_module_args({"cloud": "admin", **args}), pytest.raises((Exited, Failed)) as caught:
        network_agent.main()
    return caught.value


def succeed(**args):
    outcome = run_module(**args)
    assert isinstance(outcome, Exited), outcome.result
    return outcome.result


def refuse(neutron, **args):
    outcome = run_module(**args)
    assert isinstance(outcome, Failed), outcome.result
    assert neutron.writes == [], "a refusal writes nothing"
    return outcome.result["msg"]


def kill(neutron, *agent_ids):
    for agent_id in agent_ids:
        neutron.records[agent_id]["alive"] = False


def test_enabled_agents_stay_unchanged(neutron):
    result = succeed(host="cmp1", state="enabled")
    assert result["changed"] is False
    assert neutron.writes == []
    assert result["agents"] == [
        {"id": CMP1_CHASSIS, "agent_type": "OVN Controller agent", "binary": "ovn-controller", "host": "cmp1",
         "alive": True, "admin_state_up": True},
        {"id": CMP1_METADATA, "agent_type": "OVN Metadata agent", "binary": "neutron-ovn-metadata-agent",
         "host": "cmp1", "alive": True, "admin_state_up": True},
    ]  # fmt: skip
    assert neutron.reads == [("agents", {"host": "cmp1"})]


def test_disable_one_type(neutron):
    result = succeed(host="net2", agent_type="DHCP agent", state="disabled")
    assert result["changed"] is True
    assert neutron.writes == [("update_agent", OVS_DHCP, {"admin_state_up": False})]
    assert [agent["id"] for agent in result["agents"]] == [OVS_DHCP]
    assert result["agents"][0]["admin_state_up"] is False
    assert result["msg"] == "net2: DHCP agent disabled"


def test_disable_touches_only_the_enabled_ones(neutron):
    result = succeed(host="net2", state="disabled")
    assert result["changed"] is True
    assert neutron.writes == [
        ("update_agent", OVS_DHCP, {"admin_state_up": False}),
        ("update_agent", OVS_OVS, {"admin_state_up": False}),
    ]
    assert {agent["id"]: agent["admin_state_up"] for agent in result["agents"]} == {
        OVS_DHCP: False, OVS_L3: False, OVS_OVS: False,
    }  # fmt: skip


def test_enable_a_disabled_agent(neutron):
    result = succeed(host="net2", agent_type=["L3 agent", "DHCP agent"], state="enabled")
    assert neutron.writes == [("update_agent", OVS_L3, {"admin_state_up": True})]
    assert result["changed"] is True
    assert len(result["agents"]) == 2


def test_already_disabled_is_unchanged(neutron):
    result = succeed(host="net2", agent_type="L3 agent", state="disabled")
    assert result["changed"] is False
    assert neutron.writes == []


def test_check_mode_reports_and_writes_nothing(neutron):
    result = succeed(host="net2", state="disabled", _ansible_check_mode=True)
    assert result["changed"] is True
    assert neutron.writes == []
    assert all(agent["admin_state_up"] is False for agent in result["agents"])
    assert neutron.records[OVS_DHCP]["admin_state_up"] is True
    assert result["msg"].startswith("net2: would set")


def test_ovn_agents_cannot_be_disabled(neutron):
    msg = refuse(neutron, host="cmp1", state="disabled")
    assert "OVN agent status cannot be updated" in msg
    assert "nova-compute" in msg


def test_a_mixed_host_is_refused_before_its_other_agents_change(neutron):
    msg = refuse(neutron, host="net1", state="disabled")
    assert "OVN Controller Gateway agent" in msg
    assert "enable-chassis-as-gw" in msg
    assert neutron.records[NET1_BGP]["admin_state_up"] is True


def test_agent_type_leaves_the_ovn_agents_out(neutron):
    succeed(host="net1", agent_type="BGP dynamic routing agent", state="disabled")
    assert neutron.writes == [("update_agent", NET1_BGP, {"admin_state_up": False})]


def test_an_update_failing_halfway_says_what_was_done(neutron):
    neutron.update_fails[OVS_OVS] = openstack.exceptions.NotFoundException(message=f"Agent {OVS_OVS} not found")
    outcome = run_module(host="net2", state="disabled")
    assert isinstance(outcome, Failed)
    assert f"neutron refused to set Open vSwitch agent {OVS_OVS} on net2 disabled" in outcome.result["msg"]
    assert f"already disabled: DHCP agent {OVS_DHCP}" in outcome.result["msg"]
    assert outcome.result["changed"] is True


def test_unknown_host_fails_and_names_the_known_ones(neutron):
    msg = refuse(neutron, host="cmp9", state="disabled")
    assert "no agent on host 'cmp9'" in msg
    assert "cmp1, net1, net2" in msg


def test_unknown_agent_type_names_the_types_of_the_host(neutron):
    msg = refuse(neutron, host="net2", agent_type="Metering agent")
    assert "no agent of type Metering agent" in msg
    assert "DHCP agent, L3 agent, Open vSwitch agent" in msg


def test_absent_deletes_dead_agents(neutron):
    kill(neutron, OVS_DHCP)
    result = succeed(host="net2", agent_type="DHCP agent", state="absent")
    assert result["changed"] is True
    assert neutron.writes == [("delete_agent", OVS_DHCP, {"ignore_missing": True})]
    assert result["agents"][0]["id"] == OVS_DHCP
    assert result["also_removed"] == []
    assert OVS_DHCP not in neutron.records


def test_absent_deletes_every_ovn_agent_of_a_dead_chassis(neutron):
    kill(neutron, CMP1_CHASSIS, CMP1_METADATA)
    result = succeed(host="cmp1", state="absent")
    assert result["changed"] is True
    # The second one went with the chassis; deleting it is a no-op that neutron answers with 404.
    assert neutron.writes == [
        ("delete_agent", CMP1_CHASSIS, {"ignore_missing": True}),
        ("delete_agent", CMP1_METADATA, {"ignore_missing": True}),
    ]
    assert not [r for r in neutron.records.values() if r["host"] == "cmp1"]


def test_absent_refuses_alive_agents(neutron):
    msg = refuse(neutron, host="net2", agent_type="DHCP agent", state="absent")
    assert f"DHCP agent {OVS_DHCP} still alive" in msg
    assert "registers itself again" in msg
    assert "force: true" in msg


def test_absent_counts_the_chassis_siblings_as_alive(neutron):
    kill(neutron, CMP1_METADATA)  # metadata agent stopped, ovn-controller still running
    msg = refuse(neutron, host="cmp1", agent_type="OVN Metadata agent", state="absent")
    assert f"OVN Controller agent {CMP1_CHASSIS}" in msg
    assert "re-creates its chassis" in msg


def test_absent_reports_what_goes_with_the_chassis(neutron):
    kill(neutron, CMP1_CHASSIS, CMP1_METADATA)
    result = succeed(host="cmp1", agent_type="OVN Metadata agent", state="absent")
    assert neutron.writes == [("delete_agent", CMP1_METADATA, {"ignore_missing": True})]
    assert [agent["id"] for agent in result["also_removed"]] == [CMP1_CHASSIS]
    assert CMP1_CHASSIS not in neutron.records


def test_force_deletes_alive_agents(neutron):
    result = succeed(host="net2", agent_type="DHCP agent", state="absent", force=True)
    assert result["changed"] is True
    assert neutron.writes == [("delete_agent", OVS_DHCP, {"ignore_missing": True})]


def test_absent_without_agents_is_unchanged(neutron):
    result = succeed(host="cmp9", state="absent")
    assert result["changed"] is False
    assert result["agents"] == []
    assert neutron.writes == []


def test_absent_in_check_mode_writes_nothing(neutron):
    kill(neutron, CMP1_CHASSIS, CMP1_METADATA)
    result = succeed(host="cmp1", state="absent", _ansible_check_mode=True)
    assert result["changed"] is True
    assert neutron.writes == []
    assert len(neutron.records) == 7
    assert result["msg"] == "cmp1: would delete OVN Controller agent, OVN Metadata agent"


def test_absent_check_mode_still_refuses_alive_agents(neutron):
    refuse(neutron, host="cmp1", state="absent", _ansible_check_mode=True)


def test_neutron_that_cannot_delete_ovn_agents(neutron):
    neutron.ovn_delete_refused = True
    kill(neutron, NET1_CHASSIS, NET1_BGP)
    outcome = run_module(host="net1", state="absent")
    assert isinstance(outcome, Failed)
    assert f"ovn-sbctl chassis-del {NET1_CHASSIS}" in outcome.result["msg"]
    assert outcome.result["changed"] is False
    assert neutron.writes == [("delete_agent", NET1_CHASSIS, {"ignore_missing": True})]
