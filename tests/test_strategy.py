# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The project's Ansible strategy (Mitogen, ansible.cfg) leaves CPU placement to the kernel: what a task starts may run
on every CPU the caller may use."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANSIBLE = Path(sys.executable).parent / "ansible"


def allowed_cpus(status):
    line = next(line for line in status.splitlines() if line.startswith("Cpus_allowed_list:"))
    cpus = set()
    for part in line.split(":", 1)[1].strip().split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def test_a_task_runs_on_every_cpu_the_caller_may_use(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    executable = str(ANSIBLE) if ANSIBLE.exists() else shutil.which("ansible")
    run = subprocess.run(
        [executable, "localhost", "-i", "localhost,", "-c", "local", "-m", "ansible.builtin.command",
         "-a", "cat /proc/self/status", "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert allowed_cpus(run.stdout) == os.sched_getaffinity(0), run.stdout
