# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.nova_cells against a simulated nova 34 controller (nova-manage cell_v2, the read-only snapshot)."""

import contextlib
import json
import os
import sys
import types

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import nova_cells
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module

VENV = "/openstack/venvs/nova-34.0.0"
NOVA_MANAGE = f"{VENV}/bin/nova-manage"
CELL0 = "00000000-0000-0000-0000-000000000000"
CELL1 = "5b1b7c1e-4f6a-4c5e-9d1e-2f0b8c3a6d71"
CELL2 = "9e0c4d2a-7b3f-4e8a-a1c5-6d2f8e9b0a13"

CELL_ROWS = {
    "cell0": [CELL0, "none:/", "mysql+pymysql://nova:****@10.89.70.250/nova_cell0?charset=utf8mb4", "False"],
    "cell1": [CELL1, "rabbit://nova:****@10.89.70.11:5671/nova", "mysql+pymysql://nova:****@10.89.70.250/nova?charset=utf8mb4",
              "False"],
    "cell2": [CELL2, "rabbit://nova:****@10.89.70.12:5671/nova2",
              "mysql+pymysql://nova:****@10.89.70.250/nova2?charset=utf8mb4", "True"],
}  # fmt: skip


# oslo.config's deprecation chatter goes to stderr; nova-manage's own lines go to stdout.
STDERR_NOISE = "Modules with known eventlet monkey patching issues were imported prior to eventlet monkey patching\n"


class NovaController:
    """Answers like a controller of a two-cell deployment: cells, compute nodes per cell, host mappings."""

    def __init__(self):
        self.cells = ["cell0", "cell1"]
        self.nodes = {"cmp1": CELL1, "cmp2": CELL1}  # compute nodes that registered, by cell uuid
        self.mapped = {"cmp1": CELL1}
        self.registers_after_polls = {}  # host -> polls before its compute node appears
        self.fail = {}  # command -> (rc, stderr)
        self.calls = []

    def uuid(self, name):
        return {"cell0": CELL0, "cell1": CELL1, "cell2": CELL2}[name]

    def name(self, uuid):
        return {CELL0: "cell0", CELL1: "cell1", CELL2: "cell2"}[uuid]

    def run_command(self, argv, **kwargs):
        assert isinstance(argv, list), "commands are argv lists"
        assert "use_unsafe_shell" not in kwargs
        self.calls.append(argv)
        if os.path.basename(argv[0]) == "python3":
            assert argv[0] == f"{VENV}/bin/python3" and argv[1] == "-c" and argv[2] == nova_cells.PROBE
            if "snapshot" in self.fail:
                rc, err = self.fail["snapshot"]
                return rc, "", err
            return self.snapshot(argv[3], argv[4:])
        assert argv[0] == NOVA_MANAGE
        args = [a for a in argv[1:] if a != "--config-file" and not a.startswith("/etc/")]
        assert args[0] == "cell_v2"
        command = args[1]
        if command in self.fail:
            rc, err = self.fail[command]
            return rc, "", err
        if command == "discover_hosts":
            return 0, self.discover(args[2:]), STDERR_NOISE
        if command == "create_cell":
            name = args[args.index("--name") + 1]
            self.cells.append(name)
            return 0, self.uuid(name) + "\n", STDERR_NOISE
        raise AssertionError(f"unexpected command {argv}")

    def snapshot(self, kind, config_args):
        """What PROBE prints: list_cells' and list_hosts' rows, and the compute hosts unless kind is none."""
        assert kind in ("node", "service", "none")
        assert all(arg == "--config-file" or arg.startswith("/etc/") for arg in config_args)
        cells = [
            {"name": name, "uuid": uuid, "transport_url": mq, "database_connection": db, "disabled": disabled == "True"}
            for name in sorted(self.cells)
            for uuid, mq, db, disabled in [CELL_ROWS[name]]
        ]
        hosts = [
            {"host": host, "cell_name": self.name(uuid), "cell_uuid": uuid}
            for host, uuid in sorted(self.mapped.items())
        ]
        snapshot = {"cells": cells, "hosts": hosts, "compute_hosts": None}
        if kind != "none":
            snapshot["compute_hosts"] = self.compute_hosts()
        return 0, "some oslo warning on stdout\n" + json.dumps(snapshot) + "\n", STDERR_NOISE

    def compute_hosts(self):
        for host in list(self.registers_after_polls):
            if self.registers_after_polls[host] == 0:
                self.nodes[host] = CELL1
                del self.registers_after_polls[host]
            else:
                self.registers_after_polls[host] -= 1
        return [
            {"host": host, "cell_name": self.name(uuid), "cell_uuid": uuid, "mapped": host in self.mapped}
            for host, uuid in sorted(self.nodes.items())
        ]

    def discover(self, args):
        assert "--verbose" in args
        cell_filter = args[args.index("--cell_uuid") + 1] if "--cell_uuid" in args else None
        cells = [self.uuid(name) for name in self.cells]
        by_service = "--by-service" in args
        lines = [f"Found {len(cells)} cell mappings."]
        for uuid in cells:
            if uuid == CELL0:
                lines.append("Skipping cell0 since it does not contain hosts.")
                continue
            if cell_filter and uuid != cell_filter:
                continue
            lines.append(f"Getting computes from cell '{self.name(uuid)}': {uuid}")
            added = 0
            for host, node_cell in sorted(self.nodes.items()):
                if node_cell != uuid:
                    continue
                node_uuid = f"4f1e0c7a-0000-4000-8000-00000000000{host[-1]}"
                if not by_service:
                    lines.append(f"Checking host mapping for compute host '{host}': {node_uuid}")
                if host not in self.mapped:
                    if by_service:  # nova 34 prints the service's host without quotes
                        lines.append(f"Creating host mapping for service {host}")
                    else:
                        lines.append(f"Creating host mapping for compute host '{host}': {node_uuid}")
                    self.mapped[host] = uuid
                    added += 1
            lines.append(f"Found {added} unmapped computes in cell: {uuid}")
        return "\n".join(lines) + "\n"

    def ran(self, word):
        return [argv for argv in self.calls if word in argv]

    def snapshots(self):
        return [argv for argv in self.calls if argv[0].endswith("/python3")]

    def nova_manage_runs(self):
        return [argv for argv in self.calls if argv[0] == NOVA_MANAGE]


@pytest.fixture
def nova(monkeypatch):
    fake = NovaController()

    patch_module(monkeypatch, fake)
    monkeypatch.setattr(nova_cells.time, "sleep", lambda _seconds: None)
    return fake


def run_module(**args):
    with patch_module_args({"nova_manage": NOVA_MANAGE, **args}), pytest.raises(Exited) as caught:
        nova_cells.main()
    return caught.value.result


def fail_module(**args):
    with patch_module_args({"nova_manage": NOVA_MANAGE, **args}), pytest.raises(Failed) as caught:
        nova_cells.main()
    return caught.value.result


def test_list_reports_cells_and_hosts_and_changes_nothing(nova):
    result = run_module()
    assert result["changed"] is False
    assert [(c["name"], c["uuid"], c["disabled"]) for c in result["cells"]] == [
        ("cell0", CELL0, False),
        ("cell1", CELL1, False),
    ]
    assert result["cells"][1]["transport_url"] == "rabbit://nova:****@10.89.70.11:5671/nova"
    assert result["cells"][0]["database_connection"].endswith("/nova_cell0?charset=utf8mb4")
    assert result["hosts"] == [{"host": "cmp1", "cell_name": "cell1", "cell_uuid": CELL1}]
    assert result["mapped_hosts"] == []
    assert not nova.ran("discover_hosts")
    # One snapshot that reads no cell database, and no nova-manage.
    assert [argv[3] for argv in nova.calls] == ["none"]


def test_without_state_it_reads_a_disabled_cell_and_no_hosts(nova):
    nova.cells.append("cell2")
    nova.mapped = {}
    result = run_module()
    assert [c["disabled"] for c in result["cells"]] == [False, False, True]
    assert result["hosts"] == []


def test_discovered_maps_the_new_host_and_reports_it(nova):
    result = run_module(state="discovered")
    assert result["changed"] is True
    assert result["mapped_hosts"] == ["cmp2"]
    assert {h["host"] for h in result["hosts"]} == {"cmp1", "cmp2"}
    assert result["msg"] == "mapped cmp2"
    # A snapshot and the discovery: the hosts returned are the snapshot's plus what discover_hosts reported mapping.
    assert [argv[3] if argv[0] != NOVA_MANAGE else argv[-2] for argv in nova.calls] == ["node", "discover_hosts"]
    assert result["hosts"] == nova_cells.parse_snapshot(nova.snapshot("none", [])[1])["hosts"]


def test_a_host_that_registered_after_the_read_is_read_again(nova):
    real_discover = nova.discover

    def discover_with_a_late_host(args):
        nova.nodes["cmp3"] = CELL1  # registered between the snapshot and discover_hosts
        return real_discover(args)

    nova.discover = discover_with_a_late_host
    result = run_module(state="discovered")
    assert result["mapped_hosts"] == ["cmp2", "cmp3"]
    assert [h["host"] for h in result["hosts"]] == ["cmp1", "cmp2", "cmp3"]
    assert [argv[3] if argv[0] != NOVA_MANAGE else argv[-2] for argv in nova.calls] == [
        "node",
        "discover_hosts",
        "none",
    ]


def test_a_report_that_names_no_mapping_is_checked_in_the_databases(nova):
    real_discover = nova.discover

    def discover_in_another_words(args):
        return real_discover(args).replace("Creating host mapping for", "Mapped")

    nova.discover = discover_in_another_words
    result = run_module(state="discovered", hosts=["cmp2"])
    assert result["changed"] is True
    assert result["mapped_hosts"] == ["cmp2"], "the mappings that the second read found"
    assert [h["host"] for h in result["hosts"]] == ["cmp1", "cmp2"]
    assert len(nova.snapshots()) == 2


def test_discovered_twice_is_unchanged(nova):
    run_module(state="discovered")
    nova.calls.clear()
    result = run_module(state="discovered")
    assert result["changed"] is False
    assert result["mapped_hosts"] == []
    assert len(nova.calls) == 1 and not nova.nova_manage_runs()


def test_discovered_skips_discover_hosts_when_the_named_hosts_and_all_others_are_mapped(nova):
    run_module(state="discovered", hosts=["cmp1", "cmp2"])
    assert nova.ran("discover_hosts")
    nova.calls.clear()
    result = run_module(state="discovered", hosts=["cmp1", "cmp2"])
    assert result["changed"] is False
    assert result["mapped_hosts"] == []
    assert result["hosts"] == [
        {"host": "cmp1", "cell_name": "cell1", "cell_uuid": CELL1},
        {"host": "cmp2", "cell_name": "cell1", "cell_uuid": CELL1},
    ]
    assert not nova.ran("discover_hosts")
    # A no-op starts exactly one process: the snapshot, never nova-manage.
    assert len(nova.calls) == 1 and not nova.nova_manage_runs()


def test_discovered_with_named_hosts_still_maps_another_unmapped_host(nova):
    nova.nodes["cmp3"] = CELL1
    result = run_module(state="discovered", hosts=["cmp1"])
    assert result["mapped_hosts"] == ["cmp2", "cmp3"]


def test_check_mode_reports_without_mapping(nova):
    result = run_module(state="discovered", _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["mapped_hosts"] == ["cmp2"]
    assert result["msg"] == "would map cmp2"
    assert not nova.ran("discover_hosts")
    assert "cmp2" not in nova.mapped
    assert len(nova.calls) == 1


def test_check_mode_with_everything_mapped_is_unchanged(nova):
    nova.mapped["cmp2"] = CELL1
    result = run_module(state="discovered", _ansible_check_mode=True)
    assert result["changed"] is False and result["mapped_hosts"] == []


def test_waits_for_a_compute_host_that_registers_late(nova):
    nova.registers_after_polls["cmp3"] = 2
    result = run_module(state="discovered", hosts=["cmp1", "cmp3"], timeout=60)
    assert result["mapped_hosts"] == ["cmp2", "cmp3"]
    assert len(nova.ran("node")) == 3  # two polls without cmp3, one with it


def test_fails_naming_hosts_that_never_register(nova, monkeypatch):
    clock = iter(range(0, 10_000, 10))
    monkeypatch.setattr(nova_cells.time, "monotonic", lambda: next(clock))
    result = fail_module(state="discovered", hosts=["cmp1", "cmp9", "cmp8"], timeout=30)
    assert "cmp8, cmp9" in result["msg"] and "cmp1" not in result["msg"].split(":")[1]
    assert "journalctl -u nova-compute" in result["msg"]
    assert not nova.ran("discover_hosts")


def test_discovery_restricted_to_a_cell_by_name(nova):
    nova.cells.append("cell2")
    nova.nodes["cmp5"] = CELL2
    result = run_module(state="discovered", cell="cell2")
    assert result["mapped_hosts"] == ["cmp5"]
    assert nova.ran("--cell_uuid")[0][-1] == CELL2
    assert "cmp2" not in nova.mapped


def test_unknown_cell_is_refused_with_the_known_ones(nova):
    result = fail_module(state="discovered", cell="cell7")
    assert "no cell named 'cell7'" in result["msg"] and "cell0, cell1" in result["msg"]


def test_cell0_is_refused(nova):
    assert "cell0 holds no hosts" in fail_module(state="discovered", cell="cell0")["msg"]


def test_snapshot_failure_is_reported(nova):
    nova.fail["snapshot"] = (
        1,
        "Traceback (most recent call last):\noslo_db.exception.DBConnectionError: (2003, 'no route')\n",
    )
    result = fail_module()
    assert "reading nova's cells and host mappings with" in result["msg"] and "(exit 1)" in result["msg"]
    assert "DBConnectionError" in result["msg"]
    assert "compute hosts" in fail_module(state="discovered")["msg"]


def test_nova_manage_failure_is_reported(nova):
    nova.fail["discover_hosts"] = (
        1,
        "An error has occurred:\noslo_db.exception.DBConnectionError: (2003, 'no route')\n",
    )
    result = fail_module(state="discovered")
    assert "discover_hosts --verbose failed (exit 1)" in result["msg"] and "DBConnectionError" in result["msg"]


def test_config_files_and_by_service_are_passed_on(nova):
    result = run_module(state="discovered", config_files=["/etc/nova/nova.conf"], by_service=True, hosts=["cmp2"])
    assert result["mapped_hosts"] == ["cmp2"]  # read from nova's unquoted "for service" lines
    discover = nova.ran("discover_hosts")[0]
    assert discover[1:3] == ["--config-file", "/etc/nova/nova.conf"] and "--by-service" in discover
    snapshots = nova.snapshots()
    assert snapshots[0][3] == "service"
    assert all(argv[-2:] == ["--config-file", "/etc/nova/nova.conf"] for argv in snapshots)


def test_parse_snapshot_needs_json():
    with pytest.raises(nova_cells.NovaCellsError, match="no JSON"):
        nova_cells.parse_snapshot("Traceback (most recent call last):\nImportError: nova\n")


@pytest.mark.parametrize(
    "printed",
    ["[]", '{"cells": [], "hosts": []}', '{"cells": [], "hosts": {}, "compute_hosts": null}'],
)
def test_parse_snapshot_needs_the_three_lists(printed):
    with pytest.raises(nova_cells.NovaCellsError, match="printed"):
        nova_cells.parse_snapshot(printed)


def test_discovery_output_with_service_lines():
    text = (
        "Found 2 cell mappings.\nSkipping cell0 since it does not contain hosts.\n"
        "Getting computes from cell 'cell1': x\n"
        "Creating host mapping for service ironic1\n"  # nova 34: no quotes for a service
        "Creating host mapping for service 'ironic2'\n"
        "Creating host mapping for compute host 'cmp2': y\nCreating host mapping for compute host 'cmp2': z\n"
    )
    assert nova_cells.parse_discovery(text) == ["cmp2", "ironic1", "ironic2"]


def test_present_creates_a_missing_cell_and_reports_it(nova):
    result = run_module(state="present", name="cell2")
    assert result["changed"] is True
    assert [c["name"] for c in result["cells"]] == ["cell0", "cell1", "cell2"]
    assert [argv[-4:] for argv in nova.ran("create_cell")] == [["create_cell", "--name", "cell2", "--verbose"]]
    # A snapshot, create_cell once, and one more snapshot for the return values.
    assert [argv[3] if argv[0] != NOVA_MANAGE else argv[-4] for argv in nova.calls] == ["none", "create_cell", "none"]
    assert result["hosts"] == [{"host": "cmp1", "cell_name": "cell1", "cell_uuid": CELL1}]


def test_present_leaves_an_existing_cell_alone(nova):
    result = run_module(state="present", name="cell1")
    assert result["changed"] is False
    assert not nova.ran("create_cell")
    # A no-op starts exactly one process: the snapshot, never nova-manage.
    assert len(nova.calls) == 1 and not nova.nova_manage_runs()


def test_present_in_check_mode_reports_the_cell_without_creating_it(nova):
    result = run_module(state="present", name="cell2", _ansible_check_mode=True)
    assert result["changed"] is True
    assert "cell2" not in [c["name"] for c in result["cells"]]
    assert not nova.ran("create_cell")
    assert len(nova.calls) == 1


def test_present_needs_a_name(nova):
    assert "name" in fail_module(state="present")["msg"]


# PROBE itself, run in this process against a stand-in for the nova package.


class FakeNova:
    """The parts of nova PROBE uses: cell and host mappings of the API database, compute nodes and services by cell."""

    def __init__(self, cells, host_mappings, nodes, services):
        self.cells = cells  # in id order, as CellMappingList.get_all returns them
        self.host_mappings = host_mappings  # host -> cell
        self.nodes = nodes  # cell uuid -> compute node hosts
        self.services = services  # cell uuid -> nova-compute service hosts
        self.parsed = None
        self.targeted = []

    def modules(self):
        class HostMappingNotFound(Exception):
            pass

        def get_by_host(_ctxt, host):
            if host not in self.host_mappings:
                raise HostMappingNotFound(host)
            return types.SimpleNamespace(host=host, cell_mapping=self.host_mappings[host])

        @contextlib.contextmanager
        def target_cell(_ctxt, cell):
            self.targeted.append(cell.uuid)
            yield cell.uuid

        def get_by_binary(cctxt, binary, include_disabled=False):
            assert binary == "nova-compute" and include_disabled
            return [types.SimpleNamespace(host=host) for host in self.services.get(cctxt, [])]

        def parse_args(argv):
            self.parsed = argv

        objects = types.SimpleNamespace(
            register_all=lambda: None,
            CellMappingList=types.SimpleNamespace(get_all=lambda _ctxt: list(self.cells)),
            HostMappingList=types.SimpleNamespace(
                get_all=lambda ctxt: [get_by_host(ctxt, host) for host in self.host_mappings]
            ),
            HostMapping=types.SimpleNamespace(get_by_host=get_by_host),
            ComputeNodeList=types.SimpleNamespace(
                get_all=lambda cctxt: [types.SimpleNamespace(host=host) for host in self.nodes.get(cctxt, [])]
            ),
            ServiceList=types.SimpleNamespace(get_by_binary=get_by_binary),
        )
        # A marker instead of nova-manage's masking, to see that both URLs, and only they, go through it.
        manage = types.SimpleNamespace(mask_passwd_in_url=lambda url: f"masked({url})")
        package = types.SimpleNamespace(
            config=types.SimpleNamespace(parse_args=parse_args),
            context=types.SimpleNamespace(get_admin_context=lambda: "admin", target_cell=target_cell),
            exception=types.SimpleNamespace(HostMappingNotFound=HostMappingNotFound),
            objects=objects,
            cmd=types.SimpleNamespace(manage=manage),
        )
        return {
            "nova": package,
            "nova.cmd": package.cmd,
            "nova.cmd.manage": manage,
            "nova.config": package.config,
            "nova.context": package.context,
            "nova.exception": package.exception,
            "nova.objects": objects,
        }


def cell_mapping(name, uuid, password, disabled=False):
    return types.SimpleNamespace(
        name=name,
        uuid=uuid,
        transport_url=f"rabbit://nova:{password}@10.89.70.11:5671/nova",
        database_connection=f"mysql+pymysql://nova:{password}@10.89.70.250/nova",
        disabled=disabled,
        is_cell0=lambda: uuid == CELL0,
    )


def run_probe(monkeypatch, capsys, fake, kind):
    for name, module in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys, "argv", ["-c", kind, "--config-file", "/etc/nova/nova.conf"])
    exec(compile(nova_cells.PROBE, "<probe>", "exec"), {"__name__": "__main__"})  # noqa: S102
    return nova_cells.parse_snapshot(capsys.readouterr().out)


@pytest.fixture
def deployment():
    cell1 = cell_mapping("cell1", CELL1, "s3cret")
    cell0 = cell_mapping("cell0", CELL0, "s3cret")
    unnamed = cell_mapping(None, CELL2, "s3cret", disabled=True)
    return FakeNova(
        cells=[cell1, unnamed, cell0],
        host_mappings={"cmp2": cell1, "cmp1": cell1, "bm1": unnamed},
        nodes={CELL1: ["cmp3", "cmp1", "cmp2"], CELL2: ["bm2"]},
        services={CELL1: ["cmp1", "ironic1"], CELL2: ["bm1"]},
    )


def test_probe_lists_cells_and_hosts_as_nova_manage_does(monkeypatch, capsys, deployment):
    snapshot = run_probe(monkeypatch, capsys, deployment, "none")
    assert deployment.parsed == ["nova-cells-snapshot", "--config-file", "/etc/nova/nova.conf"]
    # list_cells: sorted by name, a missing name as "" (first), both URLs through nova-manage's masking.
    assert snapshot["cells"] == [
        {
            "name": name,
            "uuid": uuid,
            "transport_url": "masked(rabbit://nova:s3cret@10.89.70.11:5671/nova)",
            "database_connection": "masked(mysql+pymysql://nova:s3cret@10.89.70.250/nova)",
            "disabled": name == "",
        }
        for name, uuid in [("", CELL2), ("cell0", CELL0), ("cell1", CELL1)]
    ]
    # list_hosts: sorted by host.
    assert snapshot["hosts"] == [
        {"host": "bm1", "cell_name": "", "cell_uuid": CELL2},
        {"host": "cmp1", "cell_name": "cell1", "cell_uuid": CELL1},
        {"host": "cmp2", "cell_name": "cell1", "cell_uuid": CELL1},
    ]
    # "none" reads no cell database.
    assert snapshot["compute_hosts"] is None and deployment.targeted == []


def test_probe_reads_compute_nodes_of_every_cell_but_cell0(monkeypatch, capsys, deployment):
    snapshot = run_probe(monkeypatch, capsys, deployment, "node")
    assert deployment.targeted == [CELL1, CELL2]
    assert [(e["host"], e["cell_uuid"], e["mapped"]) for e in snapshot["compute_hosts"]] == [
        ("cmp1", CELL1, True),
        ("cmp2", CELL1, True),
        ("cmp3", CELL1, False),
        ("bm2", CELL2, False),
    ]


def test_probe_reads_services_with_by_service(monkeypatch, capsys, deployment):
    snapshot = run_probe(monkeypatch, capsys, deployment, "service")
    assert [(e["host"], e["mapped"]) for e in snapshot["compute_hosts"]] == [
        ("cmp1", True),
        ("ironic1", False),
        ("bm1", True),
    ]


def test_probe_masks_with_nova_manages_own_function():
    assert "from nova.cmd.manage import mask_passwd_in_url" in nova_cells.PROBE
    assert "def mask_passwd_in_url" not in nova_cells.PROBE
