# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.compute_host against a fake openstacksdk connection that plays nova: services as nova answers
them with microversion 2.53 and newer, servers that move a step each time they are read (a live migration lands in
its old status, a cold migration waits in VERIFY_RESIZE until confirmed, an evacuation rebuilds), and a clock that
only moves when the module sleeps."""

from types import SimpleNamespace

import openstack
import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import compute_host
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module
from openstack.compute.v2.server import Server
from openstack.compute.v2.service import Service

# Every Resource openstacksdk 4.x builds warns so; the fake builds them as the SDK does.
pytestmark = pytest.mark.filterwarnings("ignore:The _compute_attributes method is deprecated")

CMP1 = "0b0c8a52-8b3e-4a5f-9d3e-6f1c2a7b9e01"
CMP2 = "5d2f7c3a-1e4b-4c6d-8a9f-0b1c2d3e4f02"
CMP3 = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c03"
WEB = "1f0e0c4a-0000-4000-8000-00000000aa01"
DB = "1f0e0c4a-0000-4000-8000-00000000aa02"
ODD = "1f0e0c4a-0000-4000-8000-00000000aa03"


class FakeClock:
    """time for the module: sleeping moves the clock, nothing else does."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeCompute:
    """The compute proxy of a connection. Reads answer from the records; actions are recorded and move the server
    one step further at each later read, as nova would."""

    def __init__(self):
        self.services_ = {
            CMP1: {"host": "cmp1", "status": "enabled", "state": "up"},
            CMP2: {"host": "cmp2", "status": "enabled", "state": "up"},
            CMP3: {"host": "cmp3", "status": "disabled", "state": "down", "forced_down": True,
                   "disabled_reason": "fenced"},
        }  # fmt: skip
        for service_id, record in self.services_.items():
            record.setdefault("forced_down", False)
            record.setdefault("disabled_reason", None)
            record.update(id=service_id, binary="nova-compute", zone="nova")
        self.servers_ = {}
        # Server id -> the records it goes through, one per read, after an action.
        self.script = {}
        # Servers whose live migration nova accepts but that end where they were.
        self.stays = set()
        # Server id -> the message of a 409 nova answers to an action.
        self.refuses = {}
        self.max_microversion = "2.100"
        self.default_microversion = None
        self.reads = []
        self.writes = []

    def add(self, server_id, name, status, host="cmp1", task_state=None):
        self.servers_[server_id] = {"id": server_id, "name": name, "status": status, "compute_host": host,
                                    "task_state": task_state, "fault": None}  # fmt: skip

    # What openstack.utils.supports_microversion asks the adapter.
    def get_endpoint_data(self):
        return SimpleNamespace(min_microversion="2.1", max_microversion=self.max_microversion)

    def services(self, **query):
        assert query == {"binary": "nova-compute"}
        self.reads.append(("services", query))
        return (Service(**record) for record in self.services_.values())

    def update_service(self, service, **attrs):
        assert isinstance(service, str), "update by id, or the SDK leaves out an unchanged status"
        self.writes.append(("update_service", service, attrs))
        record = self.services_[service]
        # Nova 2.53: enabling clears the reason; disabling records what the body carries.
        record["status"] = attrs["status"]
        record["disabled_reason"] = attrs.get("disabled_reason")
        return Service(**record)

    def servers(self, details=True, all_projects=False, **query):
        assert details and all_projects, "instances of every project count"
        assert set(query) == {"compute_host"}
        self.reads.append(("servers", query))
        return [
            Server(**record) for record in self.servers_.values() if record["compute_host"] == query["compute_host"]
        ]

    def get_server(self, server_id):
        record = self.servers_.get(server_id)
        if record is None:
            raise openstack.exceptions.NotFoundException(message="No server")
        steps = self.script.get(server_id)
        if steps:
            record.update(steps.pop(0))
        return Server(**record)

    def act(self, name, server_id, moving, landed, **args):
        assert isinstance(server_id, str)
        self.writes.append((name, server_id, args))
        if server_id in self.refuses:
            raise openstack.exceptions.ConflictException(message="ConflictException: 409",
                                                         details=self.refuses[server_id])  # fmt: skip
        record = self.servers_[server_id]
        # Nova's API sets the task before it answers.
        record.update(moving)
        self.script[server_id] = [{}, landed]

    def destination(self, host):
        return host or "cmp2"

    def live_migrate_server(self, server, host=None, force=False, block_migration=None):
        record = self.servers_[server]
        back = {"status": record["status"], "task_state": None}
        where = record["compute_host"] if server in self.stays else self.destination(host)
        self.act("live_migrate_server", server, {"status": "MIGRATING", "task_state": "migrating"},
                 {**back, "compute_host": where}, host=host, force=force, block_migration=block_migration)  # fmt: skip

    def migrate_server(self, server, host=None):
        self.resized_from = self.servers_[server]["status"]
        self.act("migrate_server", server, {"status": "RESIZE", "task_state": "resize_prep"},
                 {"status": "VERIFY_RESIZE", "task_state": None, "compute_host": self.destination(host)},
                 host=host)  # fmt: skip

    def confirm_server_resize(self, server):
        self.writes.append(("confirm_server_resize", server, {}))
        record = self.servers_[server]
        assert record["status"] == "VERIFY_RESIZE"
        self.script[server] = [{}, {"status": self.resized_from}]

    def evacuate_server(self, server, host=None, admin_pass=None, force=None):
        landed = {"status": "SHUTOFF" if self.servers_[server]["status"] == "SHUTOFF" else "ACTIVE", "task_state": None,
                  "compute_host": self.destination(host)}  # fmt: skip
        self.act("evacuate_server", server, {"status": "REBUILD", "task_state": "rebuilding"}, landed, host=host)

    def migrations(self, server_id):
        return [SimpleNamespace(created_at="2025-06-02T09:14:07", migration_type="live-migration",
                                dest_compute="cmp2", status="error")]  # fmt: skip


@pytest.fixture
def nova(monkeypatch):
    compute = FakeCompute()
    conn = SimpleNamespace(compute=compute, connect_kwargs=None)

    def connect(**kwargs):
        conn.connect_kwargs = kwargs
        return conn

    patch_module(monkeypatch, compute)
    monkeypatch.setattr(openstack, "connect", connect)
    compute.clock = FakeClock()
    monkeypatch.setattr(compute_host, "time", compute.clock)
    compute.warned = []
    # Ansible's warning list is process-wide: record this module's warnings.
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda _self, message: compute.warned.append(message))
    return compute


def run_module(**args):
    with patch_module_args({"cloud": "admin", **args}), pytest.raises((Exited, Failed)) as caught:
        compute_host.main()
    return caught.value


def succeed(**args):
    outcome = run_module(**args)
    assert isinstance(outcome, Exited), outcome.result
    return outcome.result


def fail(**args):
    outcome = run_module(**args)
    assert isinstance(outcome, Failed), outcome.result
    return outcome.result


def actions(nova):
    return [(name, target) for name, target, _args in nova.writes]


def test_a_disabled_empty_host_is_unchanged(nova):
    nova.services_[CMP1].update(status="disabled", disabled_reason="maintenance")
    nova.add(WEB, "web-1", "ACTIVE", host="cmp2")
    result = succeed(host="cmp1", state="drained")
    assert result["changed"] is False
    assert result["moved"] == [] and result["not_moved"] == []
    assert result["msg"] == "cmp1: already disabled and empty"
    assert result["service"]["disabled_reason"] == "maintenance", "an unset reason leaves the one recorded"
    assert nova.writes == []


def test_drain_live_migrates_the_running_and_cold_migrates_the_stopped(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    nova.add(DB, "db-1", "SHUTOFF")
    result = succeed(host="cmp1", state="drained", disabled_reason="firmware update")
    assert result["changed"] is True
    assert nova.writes == [
        ("update_service", CMP1, {"status": "disabled", "disabled_reason": "firmware update"}),
        ("live_migrate_server", WEB, {"host": None, "force": False, "block_migration": "auto"}),
        ("migrate_server", DB, {"host": None}),
        ("confirm_server_resize", DB, {}),
    ]
    assert sorted(result["moved"], key=lambda entry: entry["name"]) == [
        {"id": DB, "name": "db-1", "method": "cold", "from_host": "cmp1", "to_host": "cmp2", "status": "SHUTOFF",
         "previous_status": "SHUTOFF"},
        {"id": WEB, "name": "web-1", "method": "live", "from_host": "cmp1", "to_host": "cmp2", "status": "ACTIVE",
         "previous_status": "ACTIVE"},
    ]  # fmt: skip
    assert result["not_moved"] == []
    assert result["service"]["status"] == "disabled"
    assert result["msg"] == "cmp1: disabled, moved 2 instance(s) (1 cold, 1 live)"
    assert {record["compute_host"] for record in nova.servers_.values()} == {"cmp2"}


def test_a_disabled_host_gets_a_default_reason(nova):
    nova.add(WEB, "web-1", "PAUSED")
    result = succeed(host="cmp1", state="drained")
    assert nova.writes[0] == (
        "update_service", CMP1, {"status": "disabled", "disabled_reason": "drained by stackwright.cloud.compute_host"}
    )  # fmt: skip
    assert result["moved"][0]["status"] == "PAUSED"


def test_a_new_reason_replaces_the_recorded_one(nova):
    nova.services_[CMP1].update(status="disabled", disabled_reason="old")
    result = succeed(host="cmp1", state="drained", disabled_reason="new")
    assert result["changed"] is True
    assert nova.writes == [("update_service", CMP1, {"status": "disabled", "disabled_reason": "new"})]
    assert result["msg"] == "cmp1: reason set to 'new'"


def test_a_server_that_stays_on_the_host_fails_the_task_and_the_host_stays_disabled(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    nova.add(DB, "db-1", "ACTIVE")
    nova.stays.add(DB)
    result = fail(host="cmp1", state="drained")
    assert result["changed"] is True
    assert [entry["id"] for entry in result["moved"]] == [WEB]
    assert result["not_moved"] == [{
        "id": DB, "name": "db-1", "status": "ACTIVE", "host": "cmp1",
        "reason": "the live move ended with the instance still on cmp1 (nova's live-migration to cmp2: error; see "
                  f"'openstack server event list {DB}')",
    }]  # fmt: skip
    assert f"did not move 1 instance(s), and the host stays disabled: db-1 ({DB})" in result["msg"]
    assert "moved 1 instance(s) (1 live)" in result["msg"]
    assert nova.services_[CMP1]["status"] == "disabled"


def test_states_nova_cannot_move_are_reported_and_left_alone(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    nova.add(ODD, "broken", "ERROR")
    nova.add(DB, "db-1", "VERIFY_RESIZE")
    result = fail(host="cmp1", state="drained")
    assert actions(nova) == [("update_service", CMP1), ("live_migrate_server", WEB)]
    reasons = {entry["name"]: entry["reason"] for entry in result["not_moved"]}
    assert reasons["broken"] == "status ERROR: nova migrates only ACTIVE, PAUSED (live) and SHUTOFF (cold) instances"
    assert "awaits confirmation" in reasons["db-1"]
    assert [entry["name"] for entry in result["moved"]] == ["web-1"]


def test_migration_live_leaves_stopped_instances(nova):
    nova.add(DB, "db-1", "SHUTOFF")
    result = fail(host="cmp1", state="drained", migration="live")
    assert "live migration needs a running instance" in result["not_moved"][0]["reason"]
    assert actions(nova) == [("update_service", CMP1)]


def test_migration_cold_moves_running_instances_too(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    result = succeed(host="cmp1", state="drained", migration="cold", target_host="cmp2")
    assert actions(nova) == [("update_service", CMP1), ("migrate_server", WEB), ("confirm_server_resize", WEB)]
    assert nova.writes[1][2] == {"host": "cmp2"}
    assert result["moved"][0]["status"] == "ACTIVE"


def test_check_mode_reports_the_plan_and_calls_nothing(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    nova.add(DB, "db-1", "SHUTOFF")
    result = succeed(host="cmp1", state="drained", _ansible_check_mode=True)
    assert nova.writes == []
    assert nova.script == {}
    assert result["changed"] is True
    assert [(entry["name"], entry["method"], entry["to_host"]) for entry in result["moved"]] == [
        ("web-1", "live", None), ("db-1", "cold", None),
    ]  # fmt: skip
    assert result["service"]["status"] == "disabled"
    assert result["msg"] == "cmp1: would disable, would move 2 instance(s) (1 cold, 1 live)"


def test_check_mode_predicts_a_failure(nova):
    nova.add(ODD, "broken", "SUSPENDED")
    result = fail(host="cmp1", state="drained", _ansible_check_mode=True)
    assert nova.writes == []
    assert "would not move 1 instance(s)" in result["msg"]


def test_check_mode_of_a_drained_host_is_unchanged(nova):
    nova.services_[CMP1]["status"] = "disabled"
    assert succeed(host="cmp1", state="drained", _ansible_check_mode=True)["changed"] is False


def test_no_other_usable_host_refuses_before_anything_changes(nova):
    nova.services_[CMP2]["status"] = "disabled"
    nova.add(WEB, "web-1", "ACTIVE")
    result = fail(host="cmp1", state="drained")
    assert "no other compute host has an enabled nova-compute service that is up" in result["msg"]
    assert "Nothing was changed" in result["msg"]
    assert nova.writes == []


def test_a_down_target_host_is_refused(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    result = fail(host="cmp1", state="drained", target_host="cmp3")
    assert "target_host cmp3 cannot take instances: its nova-compute service is down" in result["msg"]
    assert nova.writes == []


def test_draining_a_host_whose_service_is_down_points_to_evacuation(nova):
    nova.add(WEB, "web-1", "ACTIVE", host="cmp3")
    result = fail(host="cmp3", state="drained")
    assert "state: evacuated" in result["msg"]
    assert nova.writes == []


def test_nova_refusing_a_move_is_reported(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    nova.add(DB, "db-1", "ACTIVE")
    nova.refuses[DB] = "Instance is locked"
    result = fail(host="cmp1", state="drained")
    assert result["not_moved"][0]["reason"] == "nova refused the live migration: Instance is locked"
    assert [entry["name"] for entry in result["moved"]] == ["web-1"]


def test_a_move_that_outlasts_the_timeout_is_reported(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    original = nova.live_migrate_server

    def slow(server, **args):
        original(server, **args)
        nova.script[server] = [{}] * 100 + nova.script[server]

    nova.live_migrate_server = slow
    result = fail(host="cmp1", state="drained", timeout=60)
    assert result["not_moved"][0]["reason"].startswith("still MIGRATING, task migrating on cmp1 after 60 s")
    assert 60 <= nova.clock.now <= 60 + compute_host.POLL_INTERVAL


def test_a_migration_already_running_is_waited_for(nova):
    nova.services_[CMP1]["status"] = "disabled"
    nova.add(WEB, "web-1", "MIGRATING", task_state="migrating")
    nova.script[WEB] = [{}, {"status": "ACTIVE", "task_state": None, "compute_host": "cmp2"}]
    result = succeed(host="cmp1", state="drained")
    assert nova.writes == []
    assert result["changed"] is False, "the module started nothing"
    assert result["moved"][0]["method"] == "waited"


def test_an_instance_that_arrives_during_the_drain_is_reported(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    original = nova.live_migrate_server

    def and_a_build(server, **args):
        original(server, **args)
        nova.add(ODD, "late", "BUILD", task_state="spawning")

    nova.live_migrate_server = and_a_build
    result = fail(host="cmp1", state="drained")
    assert result["not_moved"] == [{"id": ODD, "name": "late", "status": "BUILD", "host": "cmp1",
                                    "reason": "came onto the host during the task: run again"}]  # fmt: skip


def test_evacuation_is_refused_while_the_service_is_up(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    result = fail(host="cmp1", state="evacuated")
    assert "still reports up" in result["msg"]
    assert "Nothing was changed" in result["msg"]
    assert nova.writes == []


def test_evacuation_of_a_dead_host(nova):
    nova.add(WEB, "web-1", "ACTIVE", host="cmp3")
    nova.add(DB, "db-1", "SHUTOFF", host="cmp3")
    nova.add(ODD, "broken", "ERROR", host="cmp3")
    result = succeed(host="cmp3", state="evacuated")
    assert result["changed"] is True
    assert actions(nova) == [("evacuate_server", WEB), ("evacuate_server", DB), ("evacuate_server", ODD)]
    assert {entry["name"]: entry["status"] for entry in result["moved"]} == {
        "web-1": "ACTIVE", "db-1": "SHUTOFF", "broken": "ACTIVE",
    }  # fmt: skip
    assert {entry["method"] for entry in result["moved"]} == {"evacuate"}
    # What ran before the evacuation, so that a playbook can start what nova 2.95+ leaves stopped.
    assert {entry["name"]: entry["previous_status"] for entry in result["moved"]} == {
        "web-1": "ACTIVE", "db-1": "SHUTOFF", "broken": "ERROR",
    }  # fmt: skip
    assert result["msg"] == "cmp3: moved 3 instance(s) (3 evacuate)"


def test_evacuation_disables_a_stopped_service(nova):
    nova.services_[CMP1]["state"] = "down"
    nova.add(WEB, "web-1", "PAUSED")
    result = fail(host="cmp1", state="evacuated")
    assert nova.writes == [
        (
            "update_service",
            CMP1,
            {"status": "disabled", "disabled_reason": "evacuated by stackwright.cloud.compute_host"},
        )
    ]
    assert "nova evacuates only ACTIVE, SHUTOFF and ERROR instances" in result["not_moved"][0]["reason"]


def test_enabled_enables_and_clears_the_reason(nova):
    nova.services_[CMP1].update(status="disabled", disabled_reason="maintenance")
    result = succeed(host="cmp1", state="enabled")
    assert result["changed"] is True
    assert nova.writes == [("update_service", CMP1, {"status": "enabled"})]
    assert result["service"]["status"] == "enabled"
    assert result["service"]["disabled_reason"] is None
    assert result["msg"] == "cmp1: enabled"


def test_enabled_is_unchanged_when_enabled(nova):
    result = succeed(host="cmp1", state="enabled")
    assert result["changed"] is False
    assert nova.writes == []


def test_enabled_in_check_mode_writes_nothing(nova):
    nova.services_[CMP3]["forced_down"] = True
    result = succeed(host="cmp3", state="enabled", _ansible_check_mode=True)
    assert result["changed"] is True
    assert nova.writes == []
    assert result["service"]["status"] == "enabled"
    assert "still forced down" in result["msg"]


def test_an_unknown_host_names_the_known_ones(nova):
    result = fail(host="cmp9", state="drained")
    assert "no nova-compute service on host 'cmp9' (compute hosts: cmp1, cmp2, cmp3)" in result["msg"]


def test_an_old_microversion_fails_before_writing(nova):
    nova.max_microversion = "2.52"
    nova.add(WEB, "web-1", "ACTIVE")
    assert "2.53" in fail(host="cmp1", state="drained")["msg"]
    assert nova.writes == []


def test_options_that_do_not_apply_are_refused(nova):
    assert (
        "apply to state=drained and state=evacuated only"
        in fail(host="cmp1", state="enabled", target_host="cmp2")["msg"]
    )
    assert "itself" in fail(host="cmp1", state="drained", target_host="cmp1")["msg"]


def test_a_server_that_goes_to_error_is_reported_with_its_fault(nova):
    nova.add(WEB, "web-1", "ACTIVE")
    original = nova.live_migrate_server

    def breaks(server, **args):
        original(server, **args)
        nova.script[server][-1] = {"status": "ERROR", "task_state": None, "fault": {"message": "libvirt said no"}}

    nova.live_migrate_server = breaks
    result = fail(host="cmp1", state="drained")
    assert result["not_moved"][0]["reason"] == "went to ERROR during the live move: libvirt said no"


def test_a_resize_this_task_did_not_start_is_not_confirmed(nova):
    nova.services_[CMP1]["status"] = "disabled"
    nova.add(WEB, "web-1", "RESIZE", task_state="resize_migrating")
    nova.script[WEB] = [{"status": "VERIFY_RESIZE", "task_state": None, "compute_host": "cmp2"}]
    result = fail(host="cmp1", state="drained")
    assert nova.writes == []
    assert "by a move this task did not start, awaiting confirmation" in result["not_moved"][0]["reason"]
