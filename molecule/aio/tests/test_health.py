"""The cloud's health as an operator or AWX reads it: playbooks/health.yml (stackwright.cloud.cloud_health) run through
ansible-runner, as AWX and automation controllers run the project, against the deployed lab, with its events read
back."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# ansible-runner starts ansible-playbook under a pty (forkpty). In a process with threads, as pytest-xdist's workers
# are, the child can deadlock before it runs: the run gets a process of its own, which has none, and the test reads
# the events from the artifacts directory, as AWX does.
RUNNER = """
import json, sys
import ansible_runner
run = ansible_runner.run(quiet=True, **json.loads(sys.argv[1]))
print(json.dumps({"status": run.status, "rc": run.rc}))
"""


def run_under_ansible_runner(private, env=None, **kwargs):
    """ansible_runner.run(private_data_dir=private, **kwargs) in a child process: (status, events in order)."""
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps({"private_data_dir": str(private), **kwargs})],
        capture_output=True, text=True, timeout=900, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    status = json.loads(proc.stdout.splitlines()[-1])["status"]
    files = sorted(private.glob("artifacts/*/job_events/*.json"), key=lambda path: int(path.name.split("-")[0]))
    return status, [json.loads(path.read_text()) for path in files]


def test_health_through_ansible_runner_finds_a_healthy_cloud(inventory, tmp_path):
    private = tmp_path / "runner"
    private.mkdir()
    status, events = run_under_ansible_runner(
        private,
        project_dir=str(REPO),
        playbook="playbooks/health.yml",
        inventory=str(Path(inventory["path"]).resolve()),
        envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": os.environ["PATH"]},
    )
    stdout = "\n".join(event.get("stdout", "") for event in events)
    assert status == "successful", stdout[-3000:]
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
