# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.compute_service against a fake openstacksdk connection: nova's os-services and servers as
nova answers them with microversion 2.53 and newer (service ids are UUIDs, updates go through the id)."""

from types import SimpleNamespace

import openstack
import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import compute_service
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module
from openstack.compute.v2.server import Server
from openstack.compute.v2.service import Service

# Every Resource openstacksdk 4.x builds warns so; the fake builds them as the SDK does.
pytestmark = pytest.mark.filterwarnings("ignore:The _compute_attributes method is deprecated")

CMP1 = "0b0c8a52-8b3e-4a5f-9d3e-6f1c2a7b9e01"
CMP2 = "5d2f7c3a-1e4b-4c6d-8a9f-0b1c2d3e4f02"
CMP3 = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c03"
COND = "c0nd0c70-0000-4000-8000-000000000004"
UPDATED = "2025-06-02T09:14:07.000000"


class FakeCompute:
    """The compute proxy of a connection: reads answer from the records, writes are recorded and applied."""

    def __init__(self):
        self.records = {
            CMP1: {"host": "cmp1", "binary": "nova-compute", "status": "enabled", "state": "up"},
            CMP2: {"host": "cmp2", "binary": "nova-compute", "status": "disabled", "state": "up",
                   "disabled_reason": "maintenance"},
            CMP3: {"host": "cmp3", "binary": "nova-compute", "status": "disabled", "state": "down",
                   "disabled_reason": "decommission"},
            COND: {"host": "ctl1", "binary": "nova-conductor", "status": "enabled", "state": "up"},
        }  # fmt: skip
        for service_id, record in self.records.items():
            record.setdefault("forced_down", False)
            record.setdefault("disabled_reason", None)
            record.update(id=service_id, updated_at=UPDATED, zone="nova")
        self.instances = {"cmp1": [("web-1", "1f0e0c4a-0000-4000-8000-00000000aa01")]}
        self.max_microversion = "2.100"
        self.default_microversion = None
        self.delete_conflict = None
        self.reads = []
        self.writes = []

    # What openstack.utils.supports_microversion asks the adapter.
    def get_endpoint_data(self):
        return SimpleNamespace(min_microversion="2.1", max_microversion=self.max_microversion)

    def services(self, **query):
        assert set(query) <= {"binary", "host"}
        self.reads.append(("services", query))
        return (
            Service(**record)
            for record in self.records.values()
            if all(record[key] == value for key, value in query.items())
        )

    def servers(self, details=True, all_projects=False, **query):
        assert all_projects, "instances of every project count"
        assert set(query) == {"compute_host"}
        self.reads.append(("servers", query))
        return (Server(id=sid, name=name) for name, sid in self.instances.get(query["compute_host"], []))

    def update_service(self, service, **attrs):
        # The module passes the id: the SDK would drop attributes equal to those of a resource it read.
        assert isinstance(service, str), "update by id, or the SDK leaves out an unchanged status"
        self.writes.append(("update_service", service, attrs))
        record = self.records[service]
        if "status" in attrs:
            # Nova 2.53: the reason is what the body carries, nothing when it carries none.
            record["status"] = attrs["status"]
            record["disabled_reason"] = attrs.get("disabled_reason")
        if "forced_down" in attrs:
            record["forced_down"] = attrs["forced_down"]
            if attrs["forced_down"]:
                record["state"] = "down"
        return Service(**record)

    def delete_service(self, service, ignore_missing=True):
        self.writes.append(("delete_service", service.id, {"ignore_missing": ignore_missing}))
        if self.delete_conflict:
            raise openstack.exceptions.ConflictException(message="ConflictException: 409", details=self.delete_conflict)
        del self.records[service.id]


@pytest.fixture
def nova(monkeypatch):
    compute = FakeCompute()
    conn = SimpleNamespace(compute=compute, connect_kwargs=None)

    def connect(**kwargs):
        conn.connect_kwargs = kwargs
        return conn

    patch_module(monkeypatch, compute)
    monkeypatch.setattr(openstack, "connect", connect)
    compute.conn = conn
    return compute


def run_module(**args):
    with patch_module_args({"cloud": "admin", **args}), pytest.raises((Exited, Failed)) as caught:
        compute_service.main()
    return caught.value


def succeed(**args):
    outcome = run_module(**args)
    assert isinstance(outcome, Exited), outcome.result
    return outcome.result


def refuse(nova, **args):
    outcome = run_module(**args)
    assert isinstance(outcome, Failed), outcome.result
    assert nova.writes == [], "a refusal writes nothing"
    return outcome.result["msg"]


def test_present_reports_the_service_and_changes_nothing(nova):
    result = succeed(host="cmp2")
    assert result["changed"] is False
    assert result["service"] == {
        "id": CMP2, "host": "cmp2", "binary": "nova-compute", "status": "disabled", "state": "up",
        "forced_down": False, "disabled_reason": "maintenance", "updated_at": UPDATED,
    }  # fmt: skip
    assert nova.writes == []
    assert nova.conn.connect_kwargs["cloud"] == "admin"
    assert nova.reads == [("services", {"binary": "nova-compute"})]


def test_force_down_updates_through_the_service_id(nova):
    result = succeed(host="cmp3", forced_down=True)
    assert result["changed"] is True
    assert nova.writes == [("update_service", CMP3, {"forced_down": True})]
    assert result["service"]["forced_down"] is True
    assert result["service"]["state"] == "down"
    assert result["msg"] == "nova-compute on cmp3: forced down"


def test_force_down_of_a_forced_service_is_unchanged(nova):
    nova.records[CMP3]["forced_down"] = True
    result = succeed(host="cmp3", forced_down=True)
    assert result["changed"] is False
    assert nova.writes == []


def test_lifting_the_force_down(nova):
    nova.records[CMP3]["forced_down"] = True
    result = succeed(host="cmp3", forced_down=False)
    assert result["changed"] is True
    assert nova.writes == [("update_service", CMP3, {"forced_down": False})]
    assert result["service"]["forced_down"] is False


def test_lifting_an_absent_force_down_is_unchanged(nova):
    result = succeed(host="cmp1", forced_down=False)
    assert result["changed"] is False
    assert nova.writes == []


def test_forcing_down_a_service_that_reports_up_warns(nova, monkeypatch):
    # Ansible's warning list is process-wide and other tests' modules consume it: record this module's warnings.
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda _self, message: warned.append(message))
    succeed(host="cmp1", forced_down=True)
    assert nova.writes == [("update_service", CMP1, {"forced_down": True})]
    assert any("fenced" in warning for warning in warned)


def test_a_new_reason_replaces_the_old_one(nova):
    result = succeed(host="cmp2", disabled_reason="firmware update")
    assert result["changed"] is True
    assert nova.writes == [("update_service", CMP2, {"status": "disabled", "disabled_reason": "firmware update"})]
    assert result["service"]["disabled_reason"] == "firmware update"
    assert result["service"]["status"] == "disabled"


def test_the_same_reason_is_unchanged(nova):
    result = succeed(host="cmp2", disabled_reason="maintenance")
    assert result["changed"] is False
    assert nova.writes == []


def test_an_empty_reason_clears_it(nova):
    result = succeed(host="cmp2", disabled_reason="")
    assert result["changed"] is True
    assert nova.writes == [("update_service", CMP2, {"status": "disabled"})]
    assert result["service"]["disabled_reason"] is None


def test_an_empty_reason_on_a_service_without_one_is_unchanged(nova):
    nova.records[CMP2]["disabled_reason"] = None
    assert succeed(host="cmp2", disabled_reason="")["changed"] is False
    assert nova.writes == []


def test_reason_and_force_down_go_in_one_update(nova):
    result = succeed(host="cmp3", forced_down=True, disabled_reason="fenced: PSU failure")
    assert nova.writes == [
        ("update_service", CMP3, {"forced_down": True, "status": "disabled", "disabled_reason": "fenced: PSU failure"})
    ]
    assert result["msg"] == "nova-compute on cmp3: forced down, reason set to 'fenced: PSU failure'"


def test_a_reason_for_an_enabled_service_points_to_openstack_cloud(nova):
    msg = refuse(nova, host="cmp1", disabled_reason="maintenance")
    assert "is enabled" in msg
    assert "openstack.cloud.compute_service" in msg


def test_check_mode_reports_the_change_and_writes_nothing(nova):
    result = succeed(host="cmp2", forced_down=True, disabled_reason="firmware update", _ansible_check_mode=True)
    assert result["changed"] is True
    assert nova.writes == []
    assert result["service"]["forced_down"] is True
    assert result["service"]["state"] == "down"
    assert result["service"]["disabled_reason"] == "firmware update"
    assert result["msg"] == "nova-compute on cmp2: would force down and set the reason to 'firmware update'"
    assert nova.records[CMP2]["forced_down"] is False


def test_check_mode_in_the_wanted_state_is_unchanged(nova):
    result = succeed(host="cmp2", disabled_reason="maintenance", _ansible_check_mode=True)
    assert result["changed"] is False


def test_unknown_host_fails_and_names_the_known_ones(nova):
    msg = refuse(nova, host="cmp9", forced_down=True)
    assert "no nova-compute service on host 'cmp9'" in msg
    assert "cmp1, cmp2, cmp3" in msg


def test_unknown_host_fails_without_options_too(nova):
    refuse(nova, host="cmp9")


def test_other_binaries_cannot_be_forced_down(nova):
    msg = refuse(nova, host="ctl1", binary="nova-conductor", forced_down=True)
    assert "only nova-compute" in msg


def test_an_old_microversion_fails_before_writing(nova):
    nova.max_microversion = "2.52"
    msg = refuse(nova, host="cmp3", forced_down=True)
    assert "2.53" in msg


def test_a_pinned_old_microversion_fails_before_writing(nova):
    nova.default_microversion = "2.40"
    assert "compute_api_version" in refuse(nova, host="cmp3", forced_down=True)


def test_duplicate_services_of_a_host_fail(nova):
    nova.records["dup"] = {**nova.records[CMP3], "id": "dup"}
    assert "delete the stale one" in refuse(nova, host="cmp3", forced_down=True)


def test_absent_deletes_a_down_empty_service(nova):
    result = succeed(host="cmp3", state="absent")
    assert result["changed"] is True
    assert nova.writes == [("delete_service", CMP3, {"ignore_missing": True})]
    assert result["service"]["id"] == CMP3
    assert ("servers", {"compute_host": "cmp3"}) in nova.reads


def test_absent_when_there_is_no_service_is_unchanged(nova):
    del nova.records[CMP3]
    result = succeed(host="cmp3", state="absent")
    assert result["changed"] is False
    assert result["service"] is None
    assert nova.writes == []


def test_absent_refuses_a_host_with_instances(nova):
    nova.records[CMP1]["state"] = "down"
    msg = refuse(nova, host="cmp1", state="absent")
    assert "still has 1 instance(s): web-1 (1f0e0c4a-0000-4000-8000-00000000aa01)" in msg
    assert "force: true" in msg


def test_absent_lists_only_the_first_instances(nova):
    nova.records[CMP1]["state"] = "down"
    nova.instances["cmp1"] = [(f"vm-{n}", f"id-{n}") for n in range(8)]
    msg = refuse(nova, host="cmp1", state="absent")
    assert "still has 8 instance(s)" in msg
    assert "vm-4 (id-4) and 3 more" in msg
    assert "vm-5" not in msg


def test_absent_refuses_a_service_that_is_up(nova):
    nova.instances.clear()
    msg = refuse(nova, host="cmp1", state="absent")
    assert "still reports up" in msg
    assert "registers itself again" in msg
    assert "systemctl stop nova-compute" in msg


def test_absent_names_every_reason_at_once(nova):
    msg = refuse(nova, host="cmp1", state="absent")
    assert "still reports up" in msg
    assert "instance(s)" in msg


def test_force_skips_the_checks(nova):
    result = succeed(host="cmp1", state="absent", force=True)
    assert result["changed"] is True
    assert nova.writes == [("delete_service", CMP1, {"ignore_missing": True})]
    assert not [read for read in nova.reads if read[0] == "servers"]


def test_nova_refusing_the_deletion_is_reported(nova):
    nova.delete_conflict = "Unable to delete compute service that is hosting instances."
    outcome = run_module(host="cmp1", state="absent", force=True)
    assert isinstance(outcome, Failed)
    assert "nova refused to delete nova-compute on cmp1" in outcome.result["msg"]
    assert "hosting instances" in outcome.result["msg"]
    assert CMP1 in nova.records


def test_absent_in_check_mode_checks_and_writes_nothing(nova):
    result = succeed(host="cmp3", state="absent", _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["msg"] == "would delete nova-compute on cmp3"
    assert nova.writes == []
    assert CMP3 in nova.records
    refuse(nova, host="cmp1", state="absent", _ansible_check_mode=True)


def test_absent_of_another_binary_skips_the_instance_check(nova):
    nova.records[COND]["state"] = "down"
    succeed(host="ctl1", binary="nova-conductor", state="absent")
    assert nova.writes == [("delete_service", COND, {"ignore_missing": True})]
    assert not [read for read in nova.reads if read[0] == "servers"]


def test_absent_takes_no_update_options(nova):
    assert "state=present only" in refuse(nova, host="cmp3", state="absent", forced_down=True)
