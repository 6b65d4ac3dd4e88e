# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""execution-environment.yml: ansible-builder accepts it and writes its build context, and every Python package it pins
has the version the deploy host's requirements.txt pins (so AWX runs what `make test` tested)."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFINITION = REPO / "execution-environment.yml"
BUILDER = Path(sys.executable).parent / "ansible-builder"


def pins(lines):
    found = {}
    for line in lines:
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_the_pins_are_the_deploy_hosts():
    definition = yaml.safe_load(DEFINITION.read_text())
    deps = definition["dependencies"]
    wanted = pins([*deps["python"], deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"]])
    locked = pins((REPO / "requirements.txt").read_text().splitlines())
    assert wanted, "the execution environment pins no Python package"
    differ = {name: (version, locked.get(name)) for name, version in wanted.items() if locked.get(name) != version}
    assert not differ, f"execution-environment.yml pins differ from requirements.txt (ee, requirements): {differ}"


def test_ansible_builder_writes_the_build_context(tmp_path):
    context = tmp_path / "context"
    run = subprocess.run(
        [str(BUILDER), "create", "-f", str(DEFINITION), "-c", str(context), "--output-filename", "Containerfile"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    containerfile = (context / "Containerfile").read_text()
    assert "quay.io/centos/centos:stream10" in containerfile
    requirements = (context / "_build" / "requirements.txt").read_text()
    assert "openstacksdk==4.22.0" in requirements and "mitogen==0.3.54" in requirements
    assert "openssh-clients" in (context / "_build" / "bindep.txt").read_text()
