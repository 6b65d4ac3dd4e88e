#!/usr/bin/env python3
# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Run one playbook through ansible_runner.run() in a process of its own; print its status and events as JSON.

The tests call it as a script: ansible-runner starts ansible-playbook under a pty (forkpty), and in a process with
threads, as pytest-xdist's workers are, the child can deadlock before it runs. The events come from the artifacts
directory, as AWX reads them.

    runner_job.py '{"private_data_dir": ..., "project_dir": ..., "playbook": ..., "inventory": ..., "envvars": ...}'
"""

import json
import sys
from pathlib import Path

import ansible_runner


def main():
    kwargs = json.loads(sys.argv[1])
    run = ansible_runner.run(quiet=True, **kwargs)
    files = sorted(
        Path(kwargs["private_data_dir"]).glob("artifacts/*/job_events/*.json"),
        key=lambda path: int(path.name.split("-")[0]),
    )
    json.dump({"status": run.status, "rc": run.rc, "events": [json.loads(p.read_text()) for p in files]}, sys.stdout)


if __name__ == "__main__":
    main()
