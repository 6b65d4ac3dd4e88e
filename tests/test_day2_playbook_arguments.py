# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The day-2 playbooks that act on one compute host check the operator's arguments before they touch the cloud.

No cloud is needed: the inventory's clouds.yaml does not exist, so a run whose arguments pass stops at the
clouds.yaml check, and the message shows which check stopped it.
"""

import pytest
import yaml
from playbook_run import run_playbook

NO_CLOUDS_YAML = "There is no"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("inventory")
    hosts = {
        "all": {
            "children": {
                "controller": {"hosts": {"ctl1": {}}},
                "compute": {"hosts": {"cmp1": {}, "cmp2": {"nova_host": "cmp2.example.org"}}},
            }
        }
    }
    (directory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return directory


def run(inventory, tmp_path, playbook, *extra_vars):
    """The run, and its output on one line."""
    proc = run_playbook(tmp_path, inventory, playbook, *[arg for extra in extra_vars for arg in ("-e", extra)],
                        ANSIBLE_NOCOLOR="1")  # fmt: skip
    return proc, " ".join((proc.stdout + proc.stderr).split())


@pytest.mark.parametrize(
    ("extra_vars", "expected"),
    [
        ((), "Name the compute host to evacuate: -e host=<name> (compute hosts: cmp1, cmp2)"),
        (("host=ctl1", "fenced=true"), "ctl1 is not in the compute group of this inventory (cmp1, cmp2)"),
        (("host=cmp1",), "Fence cmp1 first"),
        (("host=cmp1", "fenced=true", "recovered=true"), "give one of them"),
        (("host=cmp1", "fenced=true", "evacuate_compute_target=cmp1"), "must be another host of the compute group"),
        (("host=cmp1", "fenced=true", "evacuate_compute_target=ctl1"), "must be another host of the compute group"),
    ],
)
def test_evacuate_refuses_bad_arguments(inventory, tmp_path, extra_vars, expected):
    proc, out = run(inventory, tmp_path, "evacuate-compute.yml", *extra_vars)
    assert proc.returncode != 0
    assert expected in out and "Nothing was changed" in out, out[-3000:]
    assert NO_CLOUDS_YAML not in out, "the argument check let the run go on"


@pytest.mark.parametrize(
    "extra_vars",
    [
        ("host=cmp1", "fenced=true"),
        ("host=cmp1", "recovered=true"),
        ("host=cmp1", "fenced=true", "evacuate_compute_target=cmp2"),
    ],
)
def test_evacuate_accepts_good_arguments(inventory, tmp_path, extra_vars):
    proc, out = run(inventory, tmp_path, "evacuate-compute.yml", *extra_vars)
    # Past the argument check, the run stops only because this inventory has no clouds.yaml.
    assert proc.returncode != 0
    assert NO_CLOUDS_YAML in out, out[-3000:]
    assert "Nothing was changed" not in out, out[-3000:]


@pytest.mark.parametrize(
    ("extra_vars", "expected"),
    [
        ((), "Name the compute host to drain"),
        (("host=ctl1",), "ctl1 is not in the compute group"),
        (("host=cmp1", "drain_compute_target=cmp1"), "drain_compute_target must be another host"),
    ],
)
def test_drain_refuses_bad_arguments(inventory, tmp_path, extra_vars, expected):
    proc, out = run(inventory, tmp_path, "drain-compute.yml", *extra_vars)
    assert proc.returncode != 0
    assert expected in out, out[-3000:]
    assert NO_CLOUDS_YAML not in out, "the argument check let the run go on"


def test_drain_accepts_good_arguments(inventory, tmp_path):
    proc, out = run(inventory, tmp_path, "drain-compute.yml", "host=cmp1", "drain_compute_target=cmp2")
    assert proc.returncode != 0
    assert NO_CLOUDS_YAML in out, out[-3000:]


@pytest.mark.parametrize(
    ("playbook", "extra_vars"),
    [
        ("health.yml", ()),
        ("drain-compute.yml", ("host=cmp1",)),
        ("evacuate-compute.yml", ("host=cmp1", "fenced=true")),
    ],
)
@pytest.mark.parametrize("moved_by", ["keystone_credentials_dir", "pki_dir"])
def test_clouds_yaml_is_where_keystone_writes_it(inventory, tmp_path, playbook, extra_vars, moved_by):
    """The day-2 playbooks look for clouds.yaml where the keystone role writes it, also when the inventory moves it."""
    default = inventory / "clouds.yaml"
    _proc, out = run(inventory, tmp_path, playbook, *extra_vars)
    assert f"{NO_CLOUDS_YAML} {default}" in out, out[-3000:]

    elsewhere = tmp_path / "credentials"
    moved = {"keystone_credentials_dir": elsewhere, "pki_dir": elsewhere / "pki"}[moved_by]
    _proc, out = run(inventory, tmp_path, playbook, *extra_vars, f"{moved_by}={moved}")
    assert f"{NO_CLOUDS_YAML} {elsewhere / 'clouds.yaml'}" in out, out[-3000:]
