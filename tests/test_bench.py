# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""scripts/bench: the pure logic (PLAY RECAP, floor classification and critical path, restarted units, N from
memory, generated inventories, summary line, report shape) and the step runner on harmless local commands.
Nothing here creates or deploys a lab."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stackwright_tools.bench import parts
from stackwright_tools.bench.ansible_output import (
    adhoc_failed,
    adhoc_results,
    json_document,
    parse_recap,
    parse_unit_state,
    restarted_units,
)
from stackwright_tools.bench.cli import parse_args, parse_parts
from stackwright_tools.bench.errors import BenchError, Skip
from stackwright_tools.bench.floor import (
    classify,
    floor_summary,
    load_task_times,
    parse_venv_markers,
    venv_install_records,
    with_venv_installs,
)
from stackwright_tools.bench.inventory import generate_inventory
from stackwright_tools.bench.machine import choose_computes, machine_facts, parse_meminfo
from stackwright_tools.bench.parts import PARTS
from stackwright_tools.bench.report import new_report, summary_line, total_seconds
from stackwright_tools.bench.runner import Bench, Part

REPO = Path(__file__).resolve().parent.parent

# The end of a real `ansible-playbook playbooks/site.yml` output with this repo's callbacks (profile_tasks, timer).
SITE_OUTPUT = """\
TASK [horizon : Wait until the dashboard answers] ******************************
Wednesday 02 December 2026  11:58:40 +0000 (0:00:00.412)       0:41:12.101 ****
ok: [sw-aio1]

PLAY RECAP *********************************************************************
localhost                  : ok=14   changed=0    unreachable=0    failed=0    skipped=3    rescued=0    ignored=0
sw-aio1                    : ok=1432 changed=2    unreachable=0    failed=0    skipped=611  rescued=0    ignored=1

TASKS RECAP ********************************************************************
Wednesday 02 December 2026  11:58:41 +0000 (0:00:00.803)       0:41:12.904 ****
===============================================================================
python_venv : Install from the wheelhouse nova ------------------------- 61.20s
mariadb : Install MariaDB, Galera, mariabackup, socat and PyMySQL ------- 48.91s

PLAYBOOK RECAP *****************************************************************
Playbook run took 0 days, 0 hours, 41 minutes, 12 seconds
"""


def record(
    task,
    host="sw-aio1",
    duration=1.0,
    status="changed",
    action="ansible.builtin.command",
    role="",
    handler=False,
    delegated_to=None,
):
    """One line as the stackwright.cloud.task_times callback writes it."""
    return {
        "playbook": "/work/main/playbooks/site.yml",
        "play": "Keystone",
        "role": role,
        "task": task,
        "action": action,
        "handler": handler,
        "host": host,
        "delegated_to": delegated_to,
        "start": 1796210000.0,
        "end": 1796210000.0 + duration,
        "duration": duration,
        "status": status,
        "ignored": False,
    }


# --- PLAY RECAP


def test_recap_counts_per_host():
    recap = parse_recap(SITE_OUTPUT)
    assert recap["sw-aio1"] == {
        "ok": 1432,
        "changed": 2,
        "unreachable": 0,
        "failed": 0,
        "skipped": 611,
        "rescued": 0,
        "ignored": 1,
    }
    assert recap["localhost"]["changed"] == 0
    assert set(recap) == {"localhost", "sw-aio1"}


def test_recap_takes_the_last_recap_and_ignores_colours():
    earlier = SITE_OUTPUT.replace("changed=2", "changed=7")
    coloured = "\x1b[0;33msw-aio1\x1b[0m                    : ok=10   changed=0    unreachable=0    failed=0"
    text = earlier + "\nPLAY RECAP ****\n" + coloured + "\n"
    assert parse_recap(text) == {"sw-aio1": {"ok": 10, "changed": 0, "unreachable": 0, "failed": 0}}


def test_recap_missing_is_an_error():
    with pytest.raises(BenchError, match="PLAY RECAP"):
        parse_recap("ERROR! the playbook: playbooks/site.yml could not be found\n")


# --- install floor


@pytest.mark.parametrize(
    ("line", "category"),
    [
        (record("Install the base packages", action="ansible.builtin.apt", role="host_prepare"), "packages"),
        (
            record("Install the packages of keystone", action="ansible.builtin.apt", role="openstack_service"),
            "packages",
        ),
        (record("Install MariaDB, Galera, mariabackup, socat and PyMySQL", action="apt"), "packages"),
        (record("Install the base packages", action="ansible.builtin.apt", status="ok"), None),
        (record("Install the wheel build tools on the builder host", action="ansible.builtin.apt"), None),
        (record("Create the venv /openstack/venvs/nova-34.0.0", role="python_venv"), "venv"),
        (record("Install from the wheelhouse nova", role="python_venv"), "venv"),
        (record("Install from the wheelhouse {{ python_venv_packages | join(', ') }}", role="python_venv"), "venv"),
        (record("Migrate the database schema of nova", role="openstack_service"), "db_sync"),
        (record("Migrate the database schema of nova", role="openstack_service", status="skipped"), None),
        (record("Start and enable the units", action="ansible.builtin.systemd_service"), "first_start"),
        (record("Run the monitor", action="ansible.builtin.systemd_service", role="ceph"), "first_start"),
        (record("Bootstrap the new cluster with galera_new_cluster on the first member"), "first_start"),
        (
            record("Start the other members one at a time, each until it is Synced", action="ansible.builtin.shell"),
            "first_start",
        ),
        (record("Restart chrony", action="ansible.builtin.systemd_service", handler=True), "first_start"),
        (record("Restart RabbitMQ one node at a time", action="ansible.builtin.shell", handler=True), "first_start"),
        (record("Update the CA trust store", handler=True), None),
        (
            record("Restart the units whose code or configuration changed", action="ansible.builtin.systemd_service"),
            None,
        ),
        (record("Run keystone-api", action="ansible.builtin.include_role"), None),
        (record("Wait until the API components answer", action="ansible.builtin.wait_for"), None),
        (record("Write nova.conf", action="stackwright.cloud.config_file"), None),
    ],
)
def test_floor_classification(line, category):
    assert classify(line) == category


def role_tasks():
    """(file, name, action) of every task and handler in roles/."""
    found = []

    def walk(tasks, path):
        for task in tasks or []:
            for key in ("block", "rescue", "always"):
                walk(task.get(key), path)
            action = next((key for key in task if key.startswith("ansible.builtin.")), "")
            found.append((path, task.get("name", ""), action))

    for path in sorted(REPO.glob("roles/*/tasks/*.yml")) + sorted(REPO.glob("roles/*/handlers/*.yml")):
        walk(yaml.safe_load(path.read_text()), str(path.relative_to(REPO)))
    return found


def test_floor_patterns_still_match_the_roles():
    """Renaming one of these role tasks would silently empty a floor category: keep the patterns in step."""
    tasks = role_tasks()

    def categories(path):
        return {
            classify(record(name, action=action, handler="/handlers/" in path))
            for where, name, action in tasks
            if where == path
        }

    assert "venv" in categories("roles/python_venv/tasks/venv.yml")
    assert "db_sync" in categories("roles/openstack_service/tasks/db_sync.yml")
    assert "first_start" in categories("roles/openstack_service/tasks/units.yml")
    assert "first_start" in categories("roles/chrony/handlers/main.yml")
    assert "packages" in categories("roles/host_prepare/tasks/apt.yml")
    assert "packages" in categories("roles/openstack_service/tasks/system.yml")


def test_floor_is_the_critical_path_over_hosts():
    records = [
        record("Install the base packages", host="sw-ctl1", duration=30.0, action="ansible.builtin.apt"),
        record("Install the base packages", host="sw-ctl2", duration=35.0, action="ansible.builtin.apt"),
        record("Install the packages of nova", host="sw-ctl1", duration=10.0, action="ansible.builtin.apt"),
        record("Install from the wheelhouse nova", host="sw-ctl1", duration=20.0),
        record("Install from the wheelhouse nova", host="sw-cmp1", duration=25.0),
        # run_once on the first controller, reported for another host: it counts where it ran.
        record("Migrate the database schema of nova", host="sw-ctl2", delegated_to="sw-ctl1", duration=12.5),
        record("Start and enable the units", host="sw-cmp1", duration=4.0, action="ansible.builtin.systemd_service"),
        record(
            "Restart memcached", host="sw-ctl1", duration=1.5, action="ansible.builtin.systemd_service", handler=True
        ),
        record("Write nova.conf", host="sw-ctl1", duration=99.0, action="stackwright.cloud.config_file"),
        record("Learn the hosts' platform", host="sw-ctl1", duration=0.2, status="ok"),
    ]
    floor = floor_summary(records, slowest=3)
    categories = floor["categories"]
    # sw-ctl1 has 30 + 10 of packages, more than sw-ctl2's 35.
    assert categories["packages"] == {
        "seconds": 40.0,
        "host": "sw-ctl1",
        "tasks": 3,
        "per_host": {"sw-ctl1": 40.0, "sw-ctl2": 35.0},
    }
    assert categories["venv"]["seconds"] == 25.0
    assert categories["venv"]["host"] == "sw-cmp1"
    assert categories["db_sync"]["per_host"] == {"sw-ctl1": 12.5}
    assert categories["first_start"]["seconds"] == 4.0
    assert floor["seconds"] == 40.0 + 25.0 + 12.5 + 4.0
    assert floor["tasks_recorded"] == len(records)
    assert [entry["task"] for entry in floor["slowest_tasks"]] == [
        "Write nova.conf",
        "Install the base packages",
        "Install the base packages",
    ]
    assert floor["slowest_tasks"][0]["category"] is None


MARKERS = """\
/openstack/venvs/keystone-30.0.0/.stackwright-0a1b2c3d4e5f6a7b 1765000100 1765000119
/openstack/venvs/nova-34.0.0/.stackwright-1a1b2c3d4e5f6a7b 1765000119.5 1765000140.25
/openstack/venvs/glance-31.0.0/.stackwright-2a1b2c3d4e5f6a7b
"""


def test_venv_markers_give_each_install_its_times_and_skip_empty_markers():
    assert parse_venv_markers(MARKERS) == [
        ("keystone-30.0.0", 1765000100.0, 1765000119.0),
        ("nova-34.0.0", 1765000119.5, 1765000140.25),
    ]


def test_json_document_skips_what_other_callbacks_printed_first():
    text = (
        'Sunday 06 December 2026  06:55:22 +0000 (0:00:00.246)  0:00:00.246 ***\n{\n  "plays": []\n}\nTASKS RECAP ***\n'
    )
    assert json_document(text) == {"plays": []}
    with pytest.raises(BenchError, match="no JSON"):
        json_document("ERROR! no inventory\n")


def test_adhoc_results_of_every_host_even_in_separate_task_entries():
    # What the JSON callback printed for an ad-hoc run over a multinode lab: one task entry per host.
    document = {
        "plays": [
            {
                "tasks": [
                    {"hosts": {"sw-ctl1": {"unreachable": True, "msg": "Task failed: Connection timed out."}}},
                    {"hosts": {"sw-ctl2": {"rc": 0, "stdout": ""}}},
                    {"hosts": {"sw-cmp1": {"rc": 0, "stdout": "x"}, "sw-sto1": {"failed": True, "msg": "rc 2"}}},
                ]
            }
        ]
    }
    results = adhoc_results(document)
    assert sorted(results) == ["sw-cmp1", "sw-ctl1", "sw-ctl2", "sw-sto1"]
    assert sorted(host for host, result in results.items() if adhoc_failed(result)) == ["sw-ctl1", "sw-sto1"]


def test_venv_installs_become_floor_records():
    installs = venv_install_records({"sw-aio1": parse_venv_markers(MARKERS)})
    assert [(entry["host"], entry["task"], entry["duration"]) for entry in installs] == [
        ("sw-aio1", "Install from the wheelhouse keystone-30.0.0 (alone, for the floor)", 19.0),
        ("sw-aio1", "Install from the wheelhouse nova-34.0.0 (alone, for the floor)", 20.75),
    ]
    assert {classify(entry) for entry in installs} == {"venv"}


def test_marker_installs_replace_the_task_installs_of_their_host():
    records = [
        record("Install from the wheelhouse nova", host="sw-ctl1", duration=20.0),
        record("Create the venv /openstack/venvs/nova-34.0.0", host="sw-ctl1", duration=2.0),
        record("Install from the wheelhouse nova", host="sw-cmp1", duration=25.0),
    ]
    installs = venv_install_records({"sw-ctl1": [("nova-34.0.0", 100.0, 121.0)]})
    floor = floor_summary(with_venv_installs(records, installs))
    assert floor["categories"]["venv"]["per_host"] == {"sw-cmp1": 25.0, "sw-ctl1": 23.0}


def test_floor_category_without_tasks_is_zero_and_no_records_is_an_error():
    floor = floor_summary([record("Install the base packages", action="ansible.builtin.apt", duration=3.0)])
    assert floor["categories"]["db_sync"] == {"seconds": 0.0, "host": None, "tasks": 0, "per_host": {}}
    assert floor["seconds"] == 3.0
    with pytest.raises(BenchError, match="no task times"):
        floor_summary([])


def test_task_times_file_round_trip(tmp_path):
    path = tmp_path / "site.tasks.jsonl"
    lines = [record("Install the base packages", action="ansible.builtin.apt"), record("Run the OSDs")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "\n")
    assert load_task_times(path) == lines


# --- restarted units

BEFORE = """\
MainPID=4120
Id=keystone-api.service
ActiveEnterTimestamp=Wed 2026-12-02 11:31:07 UTC

MainPID=3977
Id=memcached.service
ActiveEnterTimestamp=Wed 2026-12-02 11:24:52 UTC

MainPID=0
Id=swift-object-expirer.service
ActiveEnterTimestamp=
"""


def test_unit_state_parsing():
    units = parse_unit_state(BEFORE)
    assert units["keystone-api.service"] == {"MainPID": "4120", "ActiveEnterTimestamp": "Wed 2026-12-02 11:31:07 UTC"}
    assert units["swift-object-expirer.service"]["ActiveEnterTimestamp"] == ""
    assert len(units) == 3


def test_restarted_units():
    after = BEFORE.replace("MainPID=4120", "MainPID=5310").replace("11:31:07", "12:02:44")
    assert restarted_units({"sw-aio1": BEFORE}, {"sw-aio1": BEFORE}) == {}
    assert restarted_units({"sw-aio1": BEFORE}, {"sw-aio1": after}) == {"sw-aio1": ["keystone-api.service"]}
    # A unit that is gone after the run counts as restarted too.
    assert restarted_units({"sw-aio1": BEFORE}, {}) == {
        "sw-aio1": ["keystone-api.service", "memcached.service", "swift-object-expirer.service"],
    }


# --- machine and N from memory


def test_meminfo_and_computes_from_memory():
    meminfo = parse_meminfo(
        "MemTotal:       24683520 kB\nMemFree:        19830784 kB\n"
        "MemAvailable:   22554624 kB\nHugePages_Total:       0\n"
    )
    assert meminfo == {"MemTotal": 24105, "MemFree": 19366, "MemAvailable": 22026}
    choice = choose_computes(22026, compute_mib=1024, max_computes=8)
    # (22026 - 2048 reserve - (10240 - 2 * 1024) other hosts) // 1024 = 11, capped at 8.
    assert (choice["fits"], choice["computes"], choice["other_hosts_mib"]) == (11, 8, 8192)
    assert choose_computes(12000)["computes"] == 1
    assert choose_computes(4000)["computes"] == 0


def test_machine_facts_are_measured(monkeypatch):
    monkeypatch.delenv("ANSIBLE_STRATEGY", raising=False)
    facts = machine_facts()
    assert facts["nproc"] >= 1
    assert facts["memory_total_mib"] > 0
    assert facts["kernel"]
    assert facts["git_commit"] is None or len(facts["git_commit"]) == 40
    assert facts["ansible_strategy"] == "mitogen_linear"
    json.dumps(facts)


def test_the_strategy_of_the_environment_wins_over_ansible_cfg(monkeypatch):
    monkeypatch.setenv("ANSIBLE_STRATEGY", "linear")
    assert machine_facts()["ansible_strategy"] == "linear"


# --- generated inventories


@pytest.fixture
def multinode(tmp_path):
    """A copy of inventory/lab-multinode (symlinks resolved) with files a deploy would have written."""
    source = tmp_path / "lab-multinode"
    shutil.copytree(REPO / "inventory" / "lab-multinode", source, symlinks=False)
    (source / "secrets.yml").write_text("---\nkeystone_admin_password: not-a-real-one\n")
    (source / "pki").mkdir()
    (source / "pki" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return source


def hosts(inventory):
    return yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]


def test_inventory_with_more_computes(multinode, tmp_path):
    original = hosts(multinode)
    generated = generate_inventory(multinode, tmp_path / "scale-4", 4)
    dest = Path(generated["path"])
    children = hosts(dest)
    assert generated["computes"] == ["sw-cmp1", "sw-cmp2", "sw-cmp3", "sw-cmp4"]
    assert generated["added"] == ["sw-cmp3", "sw-cmp4"]
    assert children["compute"]["hosts"]["sw-cmp4"] == {
        "ansible_host": "10.89.72.34",
        "management_address": "10.89.72.34",
        "tunnel_address": "10.89.73.34",
    }
    assert children["compute"]["hosts"]["sw-cmp1"] == original["compute"]["hosts"]["sw-cmp1"]
    for group in set(original) - {"compute"}:
        assert children[group] == original[group]
    # A pristine copy: group_vars come along (the symlinked one as a file), the deploy's files do not.
    assert (dest / "group_vars" / "all" / "lab.yml").read_text() == (multinode / "group_vars/all/lab.yml").read_text()
    assert not (dest / "group_vars" / "all" / "lab-connection.yml").is_symlink()
    assert not (dest / "secrets.yml").exists()
    assert not (dest / "pki").exists()
    assert (dest / "hosts.yml").read_text().startswith("---\n# Generated by scripts/bench")


def test_inventory_with_one_compute(multinode, tmp_path):
    generated = generate_inventory(multinode, tmp_path / "scale-1", 1)
    assert generated["computes"] == ["sw-cmp1"]
    assert generated["added"] == []


def test_inventory_for_add_compute_keeps_the_cloud_and_skips_used_addresses(multinode, tmp_path):
    data = yaml.safe_load((multinode / "hosts.yml").read_text())
    data["all"]["children"]["storage"]["hosts"]["sw-sto1"] = {
        "ansible_host": "10.89.72.33",
        "management_address": "10.89.72.33",
    }
    data["all"]["children"]["compute"]["hosts"]["sw-cmp3"] = {
        "ansible_host": "10.89.72.35",
        "management_address": "10.89.72.35",
        "tunnel_address": "10.89.73.35",
    }
    (multinode / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    generated = generate_inventory(multinode, tmp_path / "add", 4, keep_state=True)
    dest = Path(generated["path"])
    assert generated["added"] == ["sw-cmp4"]
    # .33 is the storage host's, .35 is sw-cmp3's: the next free one after the highest compute is .36.
    assert hosts(dest)["compute"]["hosts"]["sw-cmp4"]["management_address"] == "10.89.72.36"
    assert hosts(dest)["compute"]["hosts"]["sw-cmp4"]["tunnel_address"] == "10.89.73.36"
    assert (dest / "secrets.yml").is_file()
    assert (dest / "pki" / "ca.crt").is_file()


def test_generated_inventory_is_valid_for_ansible(multinode, tmp_path):
    dest = Path(generate_inventory(multinode, tmp_path / "scale-3", 3)["path"])
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(dest), "--list"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=env,
    )
    data = json.loads(out.stdout)
    assert data["compute"]["hosts"] == ["sw-cmp1", "sw-cmp2", "sw-cmp3"]
    assert data["_meta"]["hostvars"]["sw-cmp3"]["lab_name"] == "sw-multi"
    yamllint = Path(sys.executable).parent / "yamllint"
    if yamllint.exists():
        subprocess.run(
            [str(yamllint), "--strict", "-c", str(REPO / ".yamllint"), str(dest / "hosts.yml")], check=True, cwd=REPO
        )


def test_aio_inventory_is_not_multinode(tmp_path):
    with pytest.raises(BenchError, match="not multinode"):
        generate_inventory(REPO / "inventory" / "lab-aio", tmp_path / "aio", 2)


# --- summary line and report


def report_with(**parts):
    report = new_report("20261202T120000Z", ["scripts/bench"], {}, {"nproc": 2})
    report["parts"] = parts
    return report


def test_summary_line_of_every_part():
    report = report_with(
        cold={"status": "ok", "total_seconds": 1234.4},
        warm={"status": "ok", "total_seconds": 800.2},
        noop={"status": "ok", "seconds": 399.6, "changed_total": 0, "restarted_total": 0},
        floor={"status": "ok", "seconds": 300.0, "deploy_over_floor": 2.67},
        **{"add-compute": {"status": "ok", "seconds": 301.0}},
        scale={
            "status": "ok",
            "runs": [{"computes": 1, "total_seconds": 900.0}, {"computes": 4, "total_seconds": 1500}],
        },
    )
    assert summary_line(report) == (
        "bench: cold 1234 s, warm 800 s, no-op 400 s (changed 0, restarted 0), floor 300 s, deploy/floor 2.7, "
        "add-compute 301 s, 1 compute 900 s, 4 computes 1500 s"
    )


def test_summary_line_shows_failures_and_leaves_out_what_did_not_run():
    report = report_with(
        cold={"status": "failed", "error": "site failed (exit 2)"},
        noop={"status": "ok", "seconds": 410.0, "changed_total": 3, "restarted_total": 1},
        floor={"status": "ok", "seconds": 300.0, "deploy_over_floor": None},
    )
    assert summary_line(report) == "bench: cold failed, no-op 410 s (changed 3, restarted 1), floor 300 s"
    assert summary_line(report_with()) == "bench: nothing measured"


def test_parts_option():
    assert parse_parts("noop,cold") == ["cold", "noop"]
    assert parse_parts("all") == list(PARTS)
    with pytest.raises(Exception, match="unknown part"):
        parse_parts("cold,lukewarm")


@pytest.fixture
def runner(tmp_path):
    args = parse_args(["--output", str(tmp_path / "out.json"), "--work-dir", str(tmp_path / "work")])
    runner = Bench(args)
    runner.artifacts = tmp_path / "artifacts"
    runner.log_dir = tmp_path / "logs"
    runner.report = new_report(runner.run_id, ["scripts/bench"], dict(vars(args)), machine_facts())
    return runner


def test_steps_and_report_shape(runner, tmp_path):
    def measured(b, part):
        b.step(part, "prepare", ["sh", "-c", "echo preparing"], kind="setup")
        step = b.step(part, "work", ["sh", "-c", "echo working; echo STACKWRIGHT_TASK_TIMES=$STACKWRIGHT_TASK_TIMES"])
        return {"total_seconds": total_seconds(part.steps), "log": step["log"]}

    def broken(b, part):
        b.step(part, "site", ["sh", "-c", "echo 'fatal: [sw-aio1]: FAILED! => changed: false'; exit 2"])

    def not_possible(b, part):
        raise Skip("the lab sw-aio of inventory/lab-aio is not deployed")

    runner.run_part("warm", measured)
    runner.run_part("cold", broken)
    runner.run_part("noop", not_possible)
    report = json.loads((tmp_path / "out.json").read_text())
    assert report == json.loads((tmp_path / "artifacts" / "latest.json").read_text())
    assert set(report) >= {"schema", "run_id", "started", "machine", "parts", "skipped", "summary", "command"}
    warm = report["parts"]["warm"]
    assert warm["status"] == "ok"
    assert [step["name"] for step in warm["steps"]] == ["work"]
    assert [step["name"] for step in warm["setup"]] == ["prepare"]
    assert isinstance(warm["total_seconds"], float)
    assert warm["steps"][0]["rc"] == 0
    assert "working" in Path(warm["log"]).read_text()
    assert "work.tasks.jsonl" in Path(warm["log"]).read_text()
    cold = report["parts"]["cold"]
    assert cold["status"] == "failed"
    assert cold["steps"][0]["rc"] == 2
    assert "FAILED!" in cold["error_tail"]
    assert "site failed (exit 2)" in cold["error"]
    assert report["skipped"] == [{"part": "noop", "reason": "the lab sw-aio of inventory/lab-aio is not deployed"}]
    assert "noop" not in report["parts"]
    assert report["summary"].startswith("bench: cold failed, warm ")


def test_unexpected_error_fails_only_that_part(runner, tmp_path):
    def buggy(b, part):
        raise KeyError("total_seconds")

    runner.run_part("scale", buggy)
    part = json.loads((tmp_path / "out.json").read_text())["parts"]["scale"]
    assert part["status"] == "failed"
    assert part["error"] == "KeyError: 'total_seconds'"
    assert "Traceback" in part["error_tail"]


def test_scale_without_its_floor_deploys_twice_and_reinstalls_nothing(tmp_path, monkeypatch):
    output, work = str(tmp_path / "out.json"), str(tmp_path / "work")
    options = ["--parts", "scale", "--computes", "3", "--no-scale-floor"]
    args = parse_args([*options, "--output", output, "--work-dir", work])
    bench = Bench(args)
    deployed = []
    monkeypatch.setattr(bench, "destroy", lambda part, inventory, **kwargs: None)
    monkeypatch.setattr(bench, "cache_state", lambda cache: {})

    def deploy(part, inventory, **kwargs):
        deployed.append(inventory)
        return {"total_seconds": 1000.0 + 100 * len(deployed), "site": {"task_times": "site.tasks.jsonl"}}

    def no_floor(inventory):
        raise AssertionError("the floor was measured")

    monkeypatch.setattr(bench, "deploy", deploy)
    monkeypatch.setattr(bench, "venv_floor_markers", no_floor)
    figures = parts.part_scale(bench, Part("scale"))
    assert len(deployed) == 2
    assert [run["computes"] for run in figures["runs"]] == [1, 3]
    assert all(run["floor_skipped"] == "--no-scale-floor" and "floor_seconds" not in run for run in figures["runs"])
    assert figures["seconds_per_added_compute"] == 50.0
