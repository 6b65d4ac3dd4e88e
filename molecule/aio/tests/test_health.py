"""The cloud's health as an operator or AWX reads it: playbooks/health.yml (stackwright.cloud.cloud_health) run through
ansible-runner, as AWX and automation controllers run the project, against the deployed lab, with its events read
back."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# ansible_runner.run() in a process of its own (see the script): its status and events, as AWX reads them.
RUNNER_JOB = REPO / "tests" / "runner_job.py"


def test_health_through_ansible_runner_finds_a_healthy_cloud(inventory, tmp_path):
    private = tmp_path / "runner"
    private.mkdir()
    job = {
        "private_data_dir": str(private),
        "project_dir": str(REPO),
        "playbook": "playbooks/health.yml",
        "inventory": str(Path(inventory["path"]).resolve()),
        "envvars": {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": os.environ["PATH"]},
    }
    proc = subprocess.run([sys.executable, str(RUNNER_JOB), json.dumps(job)], capture_output=True, text=True,
                          timeout=900, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads(proc.stdout)
    events = run["events"]
    stdout = "\n".join(event.get("stdout", "") for event in events)
    assert run["status"] == "successful", stdout[-3000:]
    health = [
        event["event_data"]["res"]
        for event in events
        if event["event"] == "runner_on_ok" and event["event_data"]["task"] == "Read the health of the cloud"
    ]
    assert health, stdout[-3000:]
    report = health[0]
    assert report["healthy"] is True and report["problems"] == [], report["problems"]
    # What it read: every catalog endpoint answered, and the lab's services and agents were listed.
    assert report["endpoints"] and all(endpoint["reachable"] for endpoint in report["endpoints"])
    assert {service["binary"] for service in report["compute_services"]} >= {"nova-compute", "nova-scheduler"}
    assert report["network_agents"] and report["volume_services"]
