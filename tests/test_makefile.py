# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The Makefile hands what the user typed to Ansible unchanged: `make tempest TEMPEST=<regex>` as printed by
`make -n`, run by bash with ansible-playbook replaced by Ansible's own extra-vars parser."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SELECTIONS = [
    r"^tempest\.api\.(compute|image)\b",
    "it's (a|b)$",
    r'"quoted" \\ back\slash',
    "smoke",
]


def tempest_command(selection):
    """The ansible-playbook command line of `make tempest` for this selection, as make would run it."""
    result = subprocess.run(["make", "-n", "--no-print-directory", "tempest", f"TEMPEST={selection}"], cwd=REPO,
                            capture_output=True, text=True, check=True)  # fmt: skip
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("ansible-playbook ")]
    return line


def extra_vars_of(command):
    """The extra vars Ansible would get from the command's -e arguments, parsed the way ansible-playbook does."""
    parser = (
        "import json, sys; from ansible.parsing.dataloader import DataLoader; "
        "from ansible.utils.vars import load_extra_vars; from ansible import context; "
        "context.CLIARGS = context.CLIARGS.__class__({'extra_vars': sys.argv[1:]}); "
        "print(json.dumps(load_extra_vars(DataLoader())))"
    )
    script = f"ansible-playbook() {{ while [ $# -gt 0 ]; do [ \"$1\" = -e ] && args+=(\"$2\"); shift; done; " \
             f"{sys.executable} -c \"$PARSER\" \"${{args[@]}}\"; }}; args=(); {command}"  # fmt: skip
    result = subprocess.run(["bash", "-c", script], cwd=REPO, env={**os.environ, "PARSER": parser},
                            capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(result.stdout)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("selection", SELECTIONS)
def test_tempest_selection_reaches_ansible_as_typed(selection):
    assert extra_vars_of(tempest_command(selection)) == {"tempest_selection": selection}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_no_selection_means_smoke():
    assert extra_vars_of(tempest_command("")) == {"tempest_selection": "smoke"}
