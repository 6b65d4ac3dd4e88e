# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.swift_ring on a ring directory in a temporary directory, with a fake of swift's RingBuilder
(swift is importable only in swift's venv on the swift hosts)."""

import json
import os
import sys

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import swift_ring
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module


class NoCommands:
    """The module runs no command."""

    def run_command(self, argv, **_kwargs):
        raise AssertionError(f"unexpected command {argv}")


class FakeRingBuilder:
    """The part of swift.common.ring.RingBuilder the module uses. The builder file is JSON; every rebalance is counted
    in it, and the ring file holds the devices and the rebalance count it was made from."""

    rebalance_error = None

    def __init__(self, part_power, replicas, min_part_hours):
        self.part_power = part_power
        self.replicas = replicas
        self.min_part_hours = min_part_hours
        self.devs = []
        self.rebalances = 0

    @classmethod
    def load(cls, builder_file):
        with open(builder_file) as f:
            data = json.load(f)
        builder = cls(data["part_power"], data["replicas"], data["min_part_hours"])
        builder.devs = data["devs"]
        builder.rebalances = data["rebalances"]
        return builder

    def _data(self):
        return {
            "part_power": self.part_power,
            "replicas": self.replicas,
            "min_part_hours": self.min_part_hours,
            "devs": self.devs,
            "rebalances": self.rebalances,
        }

    def save(self, builder_file):
        with open(builder_file, "w") as f:
            json.dump(self._data(), f)

    def add_dev(self, dev):
        # As swift does: the next free id, stored at that index of devs.
        dev = {**dev, "id": len(self.devs)}
        self.devs.append(dev)
        return dev["id"]

    def set_dev_weight(self, dev_id, weight):
        self.devs[dev_id]["weight"] = weight

    def change_min_part_hours(self, min_part_hours):
        self.min_part_hours = min_part_hours

    def set_replicas(self, replicas):
        self.replicas = replicas

    def remove_dev(self, dev_id):
        self.devs[dev_id] = None

    def rebalance(self):
        if self.rebalance_error:
            raise self.rebalance_error
        self.rebalances += 1

    def get_ring(self):
        return FakeRingData(self._data())


class FakeRingData:
    def __init__(self, data):
        self.data = data

    def save(self, ring_file):
        with open(ring_file, "w") as f:
            json.dump(self.data, f)


DEVICES = [
    {"host": "stor1", "ip": "10.0.0.21", "port": 6200, "device": "d1", "weight": 100.0, "zone": 1, "region": 1},
    {"host": "stor2", "ip": "10.0.0.22", "port": 6200, "device": "d1", "weight": 100.0, "zone": 2, "region": 1},
    {"host": "stor3", "ip": "10.0.0.23", "port": 6200, "device": "d1", "weight": 100.0, "zone": 3, "region": 1},
]
NEW_DEVICE = {"host": "stor3", "ip": "10.0.0.23", "port": 6200, "device": "d2", "weight": 100.0, "zone": 3, "region": 1}


class RingDir:
    """/etc/swift on the ring builder host."""

    def __init__(self, path):
        path.mkdir()
        self.path = path
        self.builder = path / "object.builder"
        self.ring = path / "object.ring.gz"
        self.backups = path / "backups"

    def args(self, **args):
        defaults = {
            "builder_file": str(self.builder),
            "ring_file": str(self.ring),
            "part_power": 10,
            "replicas": 3,
            "min_part_hours": 1,
            "devices": DEVICES,
        }
        return {**defaults, **args}

    def load(self):
        return json.loads(self.builder.read_text())

    def ring_data(self):
        return json.loads(self.ring.read_text())

    def snapshot(self):
        """Every file under the directory, with its content and mtime."""
        files = {}
        for directory, _dirs, names in os.walk(self.path):
            for name in names:
                full = os.path.join(directory, name)
                with open(full, "rb") as f:
                    files[full] = (f.read(), os.stat(full).st_mtime_ns)
        return files


@pytest.fixture
def warned(monkeypatch):
    messages = []
    patch_module(monkeypatch, NoCommands())
    monkeypatch.setattr(swift_ring, "RingBuilder", FakeRingBuilder)
    monkeypatch.setattr(FakeRingBuilder, "rebalance_error", None)
    # Ansible's warning list is process-wide: record this module's warnings.
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda _self, message: messages.append(message))
    return messages


@pytest.fixture
def rings(tmp_path, warned):
    return RingDir(tmp_path / "swift")


def run(rings, **args):
    with patch_module_args(rings.args(**args)), pytest.raises(Exited) as caught:
        swift_ring.main()
    return caught.value.result


def refused(rings, **args):
    with patch_module_args(rings.args(**args)), pytest.raises(Failed) as caught:
        swift_ring.main()
    return caught.value.result


def device_keys(data):
    return sorted((d["ip"], d["port"], d["device"]) for d in data["devs"] if d is not None)


def test_a_new_ring_is_built_from_the_devices(rings, warned):
    result = run(rings)
    assert result["changed"] is True
    assert result["rebalanced"] is True
    assert result["changes"] == [
        "new builder",
        "add 10.0.0.21:6200/d1",
        "add 10.0.0.22:6200/d1",
        "add 10.0.0.23:6200/d1",
    ]
    assert result["unknown_devices"] == []
    assert warned == []
    data = rings.load()
    assert (data["part_power"], data["replicas"], data["min_part_hours"]) == (10, 3, 1)
    assert data["rebalances"] == 1
    assert device_keys(data) == [("10.0.0.21", 6200, "d1"), ("10.0.0.22", 6200, "d1"), ("10.0.0.23", 6200, "d1")]
    first = data["devs"][0]
    assert (first["weight"], first["zone"], first["region"]) == (100.0, 1, 1)
    assert (first["replication_ip"], first["replication_port"], first["meta"]) == ("10.0.0.21", 6200, "")
    assert "host" not in first
    # The ring file is the rebalanced builder's ring; there was no builder to back up.
    assert rings.ring_data() == data
    assert list(rings.backups.iterdir()) == []


def test_the_same_devices_change_nothing(rings, warned):
    run(rings)
    before = rings.snapshot()
    result = run(rings, devices=[{**d, "port": str(d["port"])} for d in reversed(DEVICES)])
    assert result["changed"] is False
    assert result["rebalanced"] is False
    assert result["changes"] == []
    assert rings.snapshot() == before
    assert rings.load()["rebalances"] == 1
    assert warned == []


def test_an_added_device_is_a_change_and_a_rebalance(rings):
    run(rings)
    old_builder = rings.builder.read_text()
    result = run(rings, devices=[*DEVICES, NEW_DEVICE])
    assert result["changed"] is True
    assert result["rebalanced"] is True
    assert result["changes"] == ["add 10.0.0.23:6200/d2"]
    data = rings.load()
    assert data["rebalances"] == 2
    assert ("10.0.0.23", 6200, "d2") in device_keys(data)
    assert rings.ring_data() == data
    # The builder it replaced is kept in backups/<time>.object.builder.
    backups = list(rings.backups.iterdir())
    assert len(backups) == 1
    assert backups[0].name.endswith(".object.builder")
    assert backups[0].read_text() == old_builder
    assert run(rings, devices=[*DEVICES, NEW_DEVICE])["changed"] is False


def test_a_new_weight_is_a_change_and_a_rebalance(rings):
    run(rings)
    heavier = [{**DEVICES[0], "weight": 200}, *DEVICES[1:]]
    result = run(rings, devices=heavier)
    assert result["changed"] is True
    assert result["changes"] == ["weight 10.0.0.21:6200/d1 200.0"]
    data = rings.load()
    assert data["devs"][0]["weight"] == 200.0
    assert data["rebalances"] == 2


def test_new_replicas_and_min_part_hours_are_changes(rings):
    run(rings)
    result = run(rings, replicas=2, min_part_hours=24)
    assert result["changed"] is True
    assert result["changes"] == ["min_part_hours 24", "replicas 2"]
    data = rings.load()
    assert (data["replicas"], data["min_part_hours"], data["rebalances"]) == (2, 24, 2)


def test_check_mode_on_a_new_ring_writes_nothing(rings):
    result = run(rings, _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["rebalanced"] is True
    assert result["changes"][0] == "new builder"
    assert len(result["changes"]) == 4
    assert list(rings.path.iterdir()) == []


def test_check_mode_on_an_added_device_reports_it_and_writes_nothing(rings):
    run(rings)
    before = rings.snapshot()
    result = run(rings, devices=[*DEVICES, NEW_DEVICE], _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["rebalanced"] is True
    assert result["changes"] == ["add 10.0.0.23:6200/d2"]
    assert rings.snapshot() == before
    assert list(rings.backups.iterdir()) == []
    assert run(rings, _ansible_check_mode=True)["changed"] is False


@pytest.mark.parametrize(
    ("moved", "where"),
    [({"zone": 4}, "region 1 zone 4"), ({"region": 2}, "region 2 zone 2")],
)
def test_moving_a_device_to_another_failure_domain_is_refused(rings, moved, where):
    run(rings, devices=[*DEVICES, NEW_DEVICE])
    before = rings.snapshot()
    devices = [DEVICES[0], {**DEVICES[1], **moved}, DEVICES[2], NEW_DEVICE]
    result = refused(rings, devices=devices)
    assert result["msg"] == (
        f"10.0.0.22:6200/d1 is in region 1 zone 2 in {rings.builder}; moving it to {where} "
        "needs swift-ring-builder by hand"
    )
    assert rings.snapshot() == before
    # Refused in check mode as well.
    assert refused(rings, devices=devices, _ansible_check_mode=True)["msg"] == result["msg"]


def test_devices_the_list_does_not_name_stay_with_a_warning(rings, warned):
    run(rings, devices=[*DEVICES, NEW_DEVICE])
    before = rings.snapshot()
    result = run(rings)
    assert result["changed"] is False
    assert result["unknown_devices"] == ["10.0.0.23:6200/d2"]
    assert warned == [f"{rings.builder} has devices the inventory does not name (left in place): 10.0.0.23:6200/d2"]
    assert rings.snapshot() == before


def test_removed_devices_are_skipped(rings):
    run(rings, devices=[*DEVICES, NEW_DEVICE])
    builder = FakeRingBuilder.load(str(rings.builder))
    builder.remove_dev(3)
    builder.save(str(rings.builder))
    result = run(rings)
    assert result["changed"] is False
    assert result["unknown_devices"] == []


def test_an_existing_builder_keeps_its_partition_power(rings, warned):
    run(rings)
    result = run(rings, part_power=12)
    assert result["changed"] is False
    assert rings.load()["part_power"] == 10
    assert warned == [f"{rings.builder} keeps its partition power 10, not 12"]


def test_a_missing_ring_file_is_written_without_a_rebalance(rings):
    run(rings)
    rings.ring.unlink()
    result = run(rings)
    assert result["changed"] is True
    assert result["rebalanced"] is True
    assert result["changes"] == []
    data = rings.load()
    assert data["rebalances"] == 1
    assert rings.ring_data() == data


def test_a_failed_rebalance_writes_nothing(rings, monkeypatch):
    run(rings)
    before = rings.snapshot()
    monkeypatch.setattr(FakeRingBuilder, "rebalance_error", ValueError("not enough devices"))
    result = refused(rings, devices=[*DEVICES, NEW_DEVICE])
    assert result["msg"] == f"rebalancing {rings.builder} failed: not enough devices"
    assert result["changes"] == ["add 10.0.0.23:6200/d2"]
    assert rings.snapshot() == before


def test_without_swift_it_says_which_python_cannot_import_it(rings, monkeypatch):
    monkeypatch.setattr(swift_ring, "RingBuilder", None)
    monkeypatch.setattr(swift_ring, "SWIFT_IMPORT_ERROR", "No module named 'swift'")
    result = refused(rings)
    assert result["msg"].startswith(f"cannot import swift's ring builder with {sys.executable}: No module named")
    assert "ansible_python_interpreter" in result["msg"]
    assert list(rings.path.iterdir()) == []
