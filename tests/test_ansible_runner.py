# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The project runs as ansible-runner (and so AWX) runs it: the repository as the project directory, its ansible.cfg,
and the events read back. Offline: health.yml stops at its clouds.yaml check, which no cloud is needed for. The aio
scenario runs the same playbook through ansible-runner against the lab (molecule/aio/tests/test_ansible_runner.py)."""

import json
import os
import sys
from pathlib import Path

import ansible_runner
import yaml

REPO = Path(__file__).resolve().parent.parent


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
    for name in [name for name in os.environ if name.startswith("ANSIBLE_")]:
        monkeypatch.delenv(name)

    events = []
    run = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(REPO),
        playbook="playbooks/health.yml",
        inventory=str(inventory / "hosts.yml"),
        envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "STACKWRIGHT_TASK_TIMES": str(task_times)},
        event_handler=lambda event: events.append(event) or True,
        quiet=True,
    )

    stdout = "\n".join(event.get("stdout", "") for event in events)
    assert run.status == "failed", stdout[-3000:]
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
