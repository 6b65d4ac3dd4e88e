# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The project runs as ansible-runner (and so AWX) runs it: the repository as the project directory, its ansible.cfg,
and the events read back. Offline: health.yml stops at its clouds.yaml check, which no cloud is needed for. The aio
scenario runs the same playbook through ansible-runner against the lab (molecule/aio/tests/test_ansible_runner.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent

# ansible_runner.run() in a process of its own (see the script): its status and events, as AWX reads them.
RUNNER_JOB = Path(__file__).resolve().parent / "runner_job.py"


def test_a_playbook_runs_under_ansible_runner_with_its_events_and_timings(tmp_path, monkeypatch):
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    hosts = {"all": {"children": {"controller": {"hosts": {"ctl1": {}}}, "compute": {"hosts": {"cmp1": {}}}}}}
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    private = tmp_path / "runner"
    private.mkdir()
    task_times = tmp_path / "task-times.jsonl"
    # ansible-runner starts the ansible-playbook it finds on PATH: this venv's.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

    job = {
        "private_data_dir": str(private),
        "project_dir": str(REPO),
        "playbook": "playbooks/health.yml",
        "inventory": str(inventory / "hosts.yml"),
        "envvars": {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "STACKWRIGHT_TASK_TIMES": str(task_times)},
    }
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
    proc = subprocess.run([sys.executable, str(RUNNER_JOB), json.dumps(job)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    status, events = result["status"], result["events"]

    stdout = "\n".join(event.get("stdout", "") for event in events)
    assert status == "failed", stdout[-3000:]
    failed = [event["event_data"] for event in events if event["event"] == "runner_on_failed"]
    assert [data["task"] for data in failed] == ["Check that clouds.yaml exists"], stdout[-3000:]
    assert f"There is no {inventory / 'clouds.yaml'}" in failed[0]["res"]["msg"]
    plays = [event["event_data"]["play"] for event in events if event["event"] == "playbook_on_play_start"]
    assert plays == ["Check the health of the cloud through its APIs"]
    stats = [event["event_data"] for event in events if event["event"] == "playbook_on_stats"]
    assert stats and stats[0]["failures"] == {"localhost": 1}
    # The progress an operator reads in a long run: profile_tasks' recap and timer's total, and the task times file.
    assert "TASKS RECAP" in stdout and "Playbook run took" in stdout, stdout[-3000:]
    times = [json.loads(line) for line in task_times.read_text().splitlines()]
    assert [(t["task"], t["status"]) for t in times] == [
        ("Look for clouds.yaml", "ok"),
        ("Check that clouds.yaml exists", "failed"),
    ]
