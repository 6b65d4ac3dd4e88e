# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.placement_audit against a fake openstacksdk connection: nova's compute services, hypervisors,
servers and migrations (compute API 2.59 and newer), and placement's providers and allocations, as the APIs answer
them. Writes to placement are recorded and applied."""

import copy
from types import SimpleNamespace

import openstack
import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import placement_audit
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module
from openstack.compute.v2.hypervisor import Hypervisor
from openstack.compute.v2.migration import Migration
from openstack.compute.v2.server import Server
from openstack.compute.v2.service import Service
from openstack.placement.v1.resource_provider import ResourceProvider
from openstack.placement.v1.resource_provider_allocation import ResourceProviderAllocation

# Every Resource openstacksdk 4.x builds warns so; the fake builds them as the SDK does.
pytestmark = pytest.mark.filterwarnings("ignore:The _compute_attributes method is deprecated")

RP1 = "11111111-1111-4111-8111-111111111111"  # cmp1
RP2 = "22222222-2222-4222-8222-222222222222"  # cmp2
RP3 = "33333333-3333-4333-8333-333333333333"  # cmp3, decommissioned: no compute node in nova any more
RP3_BW = "33333333-3333-4333-8333-3333333333bb"  # cmp3's bandwidth child provider
SEGMENT = "44444444-4444-4444-8444-444444444444"  # a neutron segment provider: not a compute node
WEB = "aaaaaaaa-0000-4000-8000-000000000001"
DB = "aaaaaaaa-0000-4000-8000-000000000002"
GONE = "dddddddd-0000-4000-8000-000000000001"  # a deleted server
MIG = "eeeeeeee-0000-4000-8000-000000000001"  # a migration's consumer
PROJECT, USER = "p" * 32, "u" * 32
FLAVOR = {"VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 20}


class Response:
    """What a raw placement call returns, as far as the module and raise_from_response read it."""

    def __init__(self, status_code, body=None):
        self.status_code, self.body = status_code, body
        self.headers, self.content, self.text, self.url = {}, b"", "", "https://placement/allocations"
        self.reason = {404: "Not Found", 409: "Conflict"}.get(status_code)

    def json(self):
        return self.body


class FakeCloud:
    """The compute and placement proxies of a connection."""

    def __init__(self):
        self.services = [("cmp1", "enabled"), ("cmp2", "enabled")]
        self.hypervisors = {RP1: ("cmp1", "cmp1"), RP2: ("cmp2", "cmp2")}
        self.servers = {
            WEB: {"name": "web", "host": "cmp1", "node": "cmp1"},
            DB: {"name": "db", "host": "cmp2", "node": "cmp2"},
        }
        self.migrations = []
        self.providers = {
            RP1: {"name": "cmp1", "parent": None, "traits": {"COMPUTE_NODE"}},
            RP2: {"name": "cmp2", "parent": None, "traits": {"COMPUTE_NODE"}},
            SEGMENT: {"name": "segment-1", "parent": None, "traits": set()},
        }
        # consumer -> {"allocations": {rp: resources}, "generation": n}
        self.consumers = {}
        self.allocate(WEB, {RP1: FLAVOR})
        self.allocate(DB, {RP2: FLAVOR})
        self.allocate("ffffffff-0000-4000-8000-000000000001", {SEGMENT: {"IPV4_ADDRESS": 1}})
        self.compute_max, self.placement_max = "2.104", "1.39"
        self.writes = []
        self.concurrent_update = False

    def allocate(self, consumer, allocations):
        self.consumers[consumer] = {"allocations": copy.deepcopy(allocations), "generation": 1}

    def add_orphaned_provider(self, with_child=False):
        self.providers[RP3] = {"name": "cmp3", "parent": None, "traits": {"COMPUTE_NODE"}}
        if with_child:
            self.providers[RP3_BW] = {"name": "cmp3:Open vSwitch agent", "parent": RP3, "traits": set()}


class FakeCompute:
    def __init__(self, cloud):
        self.cloud = cloud
        self.default_microversion = None

    def get_endpoint_data(self):
        return SimpleNamespace(min_microversion="2.1", max_microversion=self.cloud.compute_max)

    def services(self, **query):
        assert query == {"binary": "nova-compute"}
        return (
            Service(id=f"svc-{host}", host=host, binary="nova-compute", status=status, state="up")
            for host, status in self.cloud.services
        )

    def hypervisors(self, details=False, **query):
        assert details
        return (
            Hypervisor(id=uuid, hypervisor_hostname=node, service={"host": host, "id": f"svc-{host}"})
            for uuid, (node, host) in self.cloud.hypervisors.items()
        )

    def server(self, server_id):
        record = self.cloud.servers[server_id]
        return Server(**{
            "id": server_id,
            "name": record["name"],
            "status": record.get("status", "ACTIVE"),
            "OS-EXT-SRV-ATTR:host": record["host"],
            "OS-EXT-SRV-ATTR:hypervisor_hostname": record["node"],
            "OS-EXT-STS:task_state": record.get("task_state"),
        })  # fmt: skip

    def servers(self, details=True, all_projects=False, **query):
        assert details and all_projects, "every project's servers, with their host"
        assert set(query) == {"compute_host"}
        return (self.server(sid) for sid, rec in self.cloud.servers.items() if rec["host"] == query["compute_host"])

    def get_server(self, server_id):
        if server_id not in self.cloud.servers:
            raise openstack.exceptions.NotFoundException(message=f"No Server found for {server_id}")
        return self.server(server_id)

    def migrations(self, **query):
        assert set(query) == {"host"}
        host = query["host"]
        return (
            Migration(**{**record, "id": n})
            for n, record in enumerate(self.cloud.migrations)
            if host in (record["source_compute"], record["dest_compute"])
        )


class FakePlacement:
    def __init__(self, cloud):
        self.cloud = cloud
        self.default_microversion = None

    def get_endpoint_data(self):
        return SimpleNamespace(min_microversion="1.0", max_microversion=self.cloud.placement_max)

    def provider(self, uuid):
        record = self.cloud.providers[uuid]
        root = uuid
        while self.cloud.providers[root]["parent"]:
            root = self.cloud.providers[root]["parent"]
        return ResourceProvider(
            uuid=uuid, name=record["name"], parent_provider_uuid=record["parent"], root_provider_uuid=root
        )

    def resource_providers(self, **query):
        assert set(query) <= {"required", "in_tree"}
        found = [self.provider(uuid) for uuid in self.cloud.providers]
        if "required" in query:
            found = [p for p in found if query["required"] in self.cloud.providers[p.id]["traits"]]
        if "in_tree" in query:
            found = [p for p in found if p.root_provider_id == query["in_tree"]]
        return iter(found)

    def resource_provider_allocations(self, provider):
        assert isinstance(provider, str)
        for consumer, record in self.cloud.consumers.items():
            if provider in record["allocations"]:
                yield ResourceProviderAllocation(
                    resource_provider_id=provider, consumer_id=consumer, resources=record["allocations"][provider]
                )

    def delete_resource_provider(self, provider, ignore_missing=True):
        self.cloud.writes.append(("delete_resource_provider", provider))
        assert not any(r["parent"] == provider for r in self.cloud.providers.values()), "placement: has children"
        assert not any(provider in r["allocations"] for r in self.cloud.consumers.values()), "placement: in use"
        del self.cloud.providers[provider]

    @staticmethod
    def consumer_of(url):
        assert url.startswith("/allocations/")
        return url.removeprefix("/allocations/")

    def get(self, url, microversion=None):
        consumer = self.consumer_of(url)
        assert microversion == "1.38"
        record = self.cloud.consumers.get(consumer)
        if not record:
            return Response(200, {"allocations": {}})
        return Response(200, {
            "allocations": {rp: {"resources": res, "generation": 7} for rp, res in record["allocations"].items()},
            "consumer_generation": record["generation"],
            "project_id": PROJECT,
            "user_id": USER,
            "consumer_type": record.get("type", "INSTANCE"),
        })  # fmt: skip

    def put(self, url, json=None, microversion=None):
        consumer = self.consumer_of(url)
        self.cloud.writes.append(("put_allocations", consumer, json, microversion))
        record = self.cloud.consumers[consumer]
        if json["consumer_generation"] != record["generation"] or self.cloud.concurrent_update:
            raise openstack.exceptions.ConflictException(message="409", details="consumer generation conflict")
        record["allocations"] = {rp: alloc["resources"] for rp, alloc in json["allocations"].items()}
        record["generation"] += 1
        return Response(204)

    def delete(self, url, microversion=None):
        consumer = self.consumer_of(url)
        self.cloud.writes.append(("delete_allocations", consumer))
        if consumer not in self.cloud.consumers:
            return Response(404)
        del self.cloud.consumers[consumer]
        return Response(204)


@pytest.fixture
def cloud(monkeypatch):
    fake = FakeCloud()
    conn = SimpleNamespace(compute=FakeCompute(fake), placement=FakePlacement(fake), connect_kwargs=None)

    def connect(**kwargs):
        conn.connect_kwargs = kwargs
        return conn

    patch_module(monkeypatch, fake)
    monkeypatch.setattr(openstack, "connect", connect)
    fake.warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda _self, message: fake.warnings.append(message))
    return fake


def run_module(**args):
    with patch_module_args({"cloud": "admin", **args}), pytest.raises((Exited, Failed)) as caught:
        placement_audit.main()
    return caught.value


def succeed(**args):
    outcome = run_module(**args)
    assert isinstance(outcome, Exited), outcome.result
    return outcome.result


def consumers(entries):
    return [(entry["consumer_id"], entry["resource_provider_name"]) for entry in entries]


def test_a_clean_cloud_reports_nothing_and_is_unchanged(cloud):
    result = succeed(fix=True)
    assert result["changed"] is False
    assert result["orphaned_allocations"] == []
    assert result["orphaned_providers"] == []
    assert result["skipped_allocations"] == []
    assert result["summary"] == {
        "providers_checked": 2, "consumers_checked": 2, "orphaned_allocations": 0, "orphaned_providers": 0,
        "deleted_allocations": 0, "deleted_providers": 0,
    }  # fmt: skip
    assert result["msg"] == "no orphaned allocation, no orphaned provider; 2 compute-node providers checked"
    assert cloud.writes == []


def test_the_allocation_of_a_deleted_server_is_reported(cloud):
    cloud.allocate(GONE, {RP1: FLAVOR})
    result = succeed()
    assert result["changed"] is False
    assert result["orphaned_allocations"] == [{
        "consumer_id": GONE, "resource_provider_id": RP1, "resource_provider_name": "cmp1", "compute_node": "cmp1",
        "host": "cmp1", "resources": FLAVOR, "action": "reported",
        "reason": "no server and no migration of host cmp1 has this UUID (deleted server)",
    }]  # fmt: skip
    assert result["msg"] == "1 orphaned allocation, no orphaned provider; 2 compute-node providers checked"
    assert cloud.writes == []


def test_fix_deletes_the_allocation_of_a_deleted_server(cloud):
    cloud.allocate(GONE, {RP1: FLAVOR})
    result = succeed(fix=True)
    assert result["changed"] is True
    assert cloud.writes == [("delete_allocations", GONE)]
    assert GONE not in cloud.consumers
    assert result["orphaned_allocations"][0]["action"] == "deleted"
    assert result["summary"]["deleted_allocations"] == 1
    assert result["msg"].startswith("1 orphaned allocation (1 deleted), no orphaned provider")
    again = succeed(fix=True)
    assert again["changed"] is False
    assert again["orphaned_allocations"] == []


def test_check_mode_reports_what_fix_would_delete_and_writes_nothing(cloud):
    cloud.allocate(GONE, {RP1: FLAVOR})
    cloud.add_orphaned_provider()
    cloud.allocate(MIG, {RP3: FLAVOR})
    result = succeed(fix=True, _ansible_check_mode=True)
    assert result["changed"] is True
    assert cloud.writes == []
    assert GONE in cloud.consumers and RP3 in cloud.providers
    assert [entry["action"] for entry in result["orphaned_allocations"]] == ["would delete", "would delete"]
    assert result["orphaned_providers"][0]["action"] == "would delete"
    assert result["summary"]["deleted_allocations"] == 1 + 1
    assert "(1 would be deleted)" in result["msg"]


def test_check_mode_without_fix_is_a_report(cloud):
    cloud.allocate(GONE, {RP1: FLAVOR})
    result = succeed(_ansible_check_mode=True)
    assert result["changed"] is False
    assert result["orphaned_allocations"][0]["action"] == "reported"


def test_a_server_moved_away_keeps_its_allocation_on_its_new_host(cloud):
    # Evacuated from cmp1 whose nova-compute was then deleted: the source allocation stays forever.
    cloud.servers[WEB].update(host="cmp2", node="cmp2")
    cloud.services = [("cmp2", "enabled")]
    cloud.allocate(WEB, {RP1: FLAVOR, RP2: FLAVOR})
    cloud.migrations.append({"uuid": MIG, "instance_uuid": WEB, "migration_type": "evacuation", "status": "done",
                             "source_compute": "cmp1", "dest_compute": "cmp2"})  # fmt: skip
    result = succeed(fix=True)
    assert consumers(result["orphaned_allocations"]) == [(WEB, "cmp1")]
    assert result["orphaned_allocations"][0]["reason"] == "server web is on host cmp2, not on cmp1"
    # Only cmp1's part goes; cmp2's is written back under the consumer generation, with the consumer's type.
    assert cloud.writes == [(
        "put_allocations", WEB,
        {"allocations": {RP2: {"resources": FLAVOR}}, "consumer_generation": 1, "project_id": PROJECT,
         "user_id": USER, "consumer_type": "INSTANCE"},
        "1.38",
    )]  # fmt: skip
    assert cloud.consumers[WEB]["allocations"] == {RP2: FLAVOR}


def test_an_evacuation_whose_source_may_come_back_is_not_orphaned(cloud):
    cloud.servers[WEB].update(host="cmp2", node="cmp2")
    cloud.allocate(WEB, {RP1: FLAVOR, RP2: FLAVOR})
    cloud.migrations.append({"uuid": MIG, "instance_uuid": WEB, "migration_type": "evacuation", "status": "done",
                             "source_compute": "cmp1", "dest_compute": "cmp2"})  # fmt: skip
    result = succeed(fix=True)
    assert result["changed"] is False
    assert result["orphaned_allocations"] == []
    assert consumers(result["skipped_allocations"]) == [(WEB, "cmp1")]
    assert "evacuation, status done" in result["skipped_allocations"][0]["reason"]
    assert cloud.writes == []


def test_an_instance_mid_migration_is_not_reported(cloud):
    # Resizing from cmp1 to cmp2: the server already points at cmp2, its migration holds cmp1's resources.
    cloud.servers[WEB].update(host="cmp2", node="cmp2", status="RESIZE", task_state="resize_migrated")
    cloud.allocate(WEB, {RP2: FLAVOR})
    cloud.allocate(MIG, {RP1: FLAVOR})
    cloud.migrations.append({"uuid": MIG, "instance_uuid": WEB, "migration_type": "resize", "status": "migrating",
                             "source_compute": "cmp1", "dest_compute": "cmp2"})  # fmt: skip
    # And a live migration from cmp2 to cmp1 whose server record still says cmp2, holding both hosts.
    cloud.servers[DB].update(status="MIGRATING", task_state="migrating")
    cloud.allocate(DB, {RP1: FLAVOR, RP2: FLAVOR})
    result = succeed(fix=True)
    assert result["orphaned_allocations"] == []
    assert result["changed"] is False
    assert cloud.writes == []
    skipped = {(e["consumer_id"], e["resource_provider_name"]): e["reason"] for e in result["skipped_allocations"]}
    assert skipped == {
        (MIG, "cmp1"): f"migration {MIG} (resize) of server {WEB} is in progress (status migrating)",
        (DB, "cmp1"): "server db is in a migration or another operation (task state: migrating)",
    }


def test_a_server_waiting_for_its_resize_confirmation_is_not_reported(cloud):
    # VERIFY_RESIZE has no task state; the migration (status finished) holds the source until confirmed.
    cloud.servers[WEB].update(host="cmp2", node="cmp2", status="VERIFY_RESIZE")
    cloud.allocate(WEB, {RP2: FLAVOR})
    cloud.allocate(MIG, {RP1: FLAVOR})
    cloud.migrations.append({"uuid": MIG, "instance_uuid": WEB, "migration_type": "resize", "status": "finished",
                             "source_compute": "cmp1", "dest_compute": "cmp2"})  # fmt: skip
    result = succeed(fix=True)
    assert result["orphaned_allocations"] == []
    assert cloud.writes == []


def test_a_migration_with_a_migration_record_in_progress_is_not_reported(cloud):
    # Neither a task state nor a migrating status (a stuck live migration), but nova's record is still running.
    cloud.servers[WEB].update(host="cmp2", node="cmp2")
    cloud.allocate(WEB, {RP1: FLAVOR, RP2: FLAVOR})
    cloud.migrations.append({"uuid": MIG, "instance_uuid": WEB, "migration_type": "live-migration",
                             "status": "running", "source_compute": "cmp1", "dest_compute": "cmp2"})  # fmt: skip
    result = succeed(fix=True)
    assert result["orphaned_allocations"] == []
    assert "in progress" in result["skipped_allocations"][0]["reason"]


def test_the_consumer_of_a_finished_migration_is_orphaned(cloud):
    cloud.allocate(MIG, {RP1: FLAVOR})
    cloud.migrations.append({"uuid": MIG, "instance_uuid": DB, "migration_type": "migration", "status": "confirmed",
                             "source_compute": "cmp1", "dest_compute": "cmp2"})  # fmt: skip
    result = succeed(fix=True)
    assert consumers(result["orphaned_allocations"]) == [(MIG, "cmp1")]
    assert "is over (status confirmed)" in result["orphaned_allocations"][0]["reason"]
    assert cloud.writes == [("delete_allocations", MIG)]


def test_an_orphaned_provider_with_allocations_is_not_deleted(cloud):
    # cmp3's compute node is gone, but nova still places a server there (its service was forced away).
    cloud.add_orphaned_provider()
    cloud.servers["aaaaaaaa-0000-4000-8000-000000000003"] = {"name": "stuck", "host": "cmp3", "node": "cmp3"}
    cloud.allocate("aaaaaaaa-0000-4000-8000-000000000003", {RP3: FLAVOR})
    cloud.allocate(GONE, {RP3: FLAVOR})
    result = succeed(fix=True)
    assert result["orphaned_providers"] == [{
        "id": RP3, "name": "cmp3", "children": [], "service": False, "allocations": 2, "remaining_allocations": 1,
        "action": "kept",
    }]  # fmt: skip
    # The deleted server's allocation goes, the provider stays.
    assert cloud.writes == [("delete_allocations", GONE)]
    assert RP3 in cloud.providers
    assert result["changed"] is True
    assert result["msg"].startswith("1 orphaned allocation (1 deleted), 1 orphaned provider (0 deleted)")


def test_an_orphaned_provider_is_only_reported_without_fix(cloud):
    cloud.add_orphaned_provider()
    result = succeed()
    assert result["orphaned_providers"][0]["action"] == "reported"
    assert result["orphaned_providers"][0]["remaining_allocations"] == 0
    assert cloud.writes == []


def test_an_orphaned_provider_is_deleted_once_empty_children_first(cloud):
    cloud.add_orphaned_provider(with_child=True)
    cloud.allocate(GONE, {RP3: FLAVOR, RP3_BW: {"NET_BW_EGR_KILOBIT_PER_SEC": 1000}})
    result = succeed(fix=True)
    assert result["changed"] is True
    assert consumers(result["orphaned_allocations"]) == [(GONE, "cmp3"), (GONE, "cmp3:Open vSwitch agent")]
    assert cloud.writes == [
        ("delete_allocations", GONE),
        ("delete_resource_provider", RP3_BW),
        ("delete_resource_provider", RP3),
    ]
    assert result["orphaned_providers"][0]["action"] == "deleted"
    assert result["orphaned_providers"][0]["children"] == [RP3_BW]
    assert result["summary"]["deleted_providers"] == 1
    assert succeed(fix=True)["changed"] is False


def test_no_provider_is_orphaned_while_a_cell_is_unreachable(cloud):
    cloud.add_orphaned_provider()
    cloud.services.append(("cmp3", "UNKNOWN"))
    result = succeed(fix=True)
    assert result["orphaned_providers"] == []
    assert cloud.writes == []
    assert any("cannot reach a cell" in warning for warning in cloud.warnings)


def test_the_host_option_audits_one_provider(cloud):
    cloud.allocate(GONE, {RP1: FLAVOR})
    result = succeed(host="cmp2", fix=True)
    assert result["summary"]["providers_checked"] == 1
    assert result["orphaned_allocations"] == []
    assert cloud.writes == []
    assert consumers(succeed(host=RP1)["orphaned_allocations"]) == [(GONE, "cmp1")]


def test_a_host_without_provider_warns_and_reports_nothing(cloud):
    result = succeed(host="cmp9", fix=True)
    assert result["changed"] is False
    assert result["summary"]["providers_checked"] == 0
    assert any("cmp9" in warning for warning in cloud.warnings)


def test_consumers_of_other_services_are_skipped(cloud):
    cloud.allocate(GONE, {RP1: {"CUSTOM_RESERVATION": 1}})
    result = succeed(fix=True)
    assert result["orphaned_allocations"] == []
    assert "not nova's consumer" in result["skipped_allocations"][0]["reason"]
    assert cloud.writes == []


def test_an_allocation_removed_meanwhile_is_not_counted(cloud, monkeypatch):
    cloud.allocate(GONE, {RP1: FLAVOR})
    delete = FakePlacement.delete

    def delete_after_nova(self, url, microversion=None):
        cloud.consumers.pop(GONE, None)
        return delete(self, url, microversion)

    monkeypatch.setattr(FakePlacement, "delete", delete_after_nova)
    result = succeed(fix=True)
    assert result["changed"] is False
    assert result["orphaned_allocations"][0]["action"] == "already gone"


def test_an_old_compute_api_fails_before_reading(cloud):
    cloud.compute_max = "2.58"
    outcome = run_module()
    assert isinstance(outcome, Failed)
    assert "compute API microversion 2.59" in outcome.result["msg"]


def test_an_old_placement_api_fails(cloud):
    cloud.placement_max = "1.27"
    outcome = run_module()
    assert isinstance(outcome, Failed)
    assert "placement API microversion 1.28" in outcome.result["msg"]


def evacuated_from_a_deleted_host(cloud):
    cloud.servers[WEB].update(host="cmp2", node="cmp2")
    cloud.services = [("cmp2", "enabled")]
    cloud.allocate(WEB, {RP1: FLAVOR, RP2: FLAVOR})


def test_a_consumer_without_a_type_is_written_back_without_one(cloud):
    evacuated_from_a_deleted_host(cloud)
    cloud.consumers[WEB]["type"] = "unknown"  # placement's answer for consumers written before 1.38
    succeed(fix=True)
    (_put, _consumer, body, microversion) = cloud.writes[0]
    assert "consumer_type" not in body
    assert microversion == "1.28"


def test_a_consumer_changed_meanwhile_fails_and_says_to_run_again(cloud):
    evacuated_from_a_deleted_host(cloud)
    cloud.concurrent_update = True
    outcome = run_module(fix=True)
    assert isinstance(outcome, Failed)
    assert f"allocations of consumer {WEB}" in outcome.result["msg"]
    assert "run the audit again" in outcome.result["msg"]
    assert cloud.consumers[WEB]["allocations"] == {RP1: FLAVOR, RP2: FLAVOR}
