# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Run one of the project's playbooks offline, as the tests need it: the project's ansible.cfg, none of the caller's
ANSIBLE_* settings, temporary files under the test's own directory."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def run_playbook(tmp_path, inventory, playbook, *args, **env):
    """ansible-playbook -i inventory playbooks/<playbook> args..., with these extra environment variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    clean.pop("STACKWRIGHT_SERVICES", None)
    clean.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp"),
        # These runs reach no remote host, so Mitogen's connection multiplexer would only add its start (about
        # 0.7 s a run); the deploys that reach hosts keep ansible.cfg's strategy.
        ANSIBLE_STRATEGY="linear",
    )
    clean.update(env)
    executable = str(ANSIBLE_PLAYBOOK) if ANSIBLE_PLAYBOOK.exists() else shutil.which("ansible-playbook")
    return subprocess.run(
        [executable, "-i", str(inventory), str(REPO / "playbooks" / playbook), *args],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
