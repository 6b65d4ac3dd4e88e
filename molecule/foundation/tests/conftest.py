"""Shared fixtures: the scenario inventory as Ansible sees it (raw host vars, groups)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def inventory():
    path = os.environ["STACKWRIGHT_INVENTORY"]
    out = subprocess.run(["ansible-inventory", "-i", path, "--list"], check=True, capture_output=True, text=True,
                         cwd=REPO).stdout
    data = json.loads(out)
    groups = {name: data.get(name, {}).get("hosts", []) for name in ("controller", "network", "compute", "storage")}
    return {"path": path, "hostvars": data["_meta"]["hostvars"], "groups": groups}


@pytest.fixture
def hostvars(host, inventory):
    name = host.backend.get_hostname()
    return inventory["hostvars"][name]
