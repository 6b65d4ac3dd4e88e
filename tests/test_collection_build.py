# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The stackwright.cloud collection builds with ansible-galaxy and installs into a clean path, with its license, README,
changelog and runtime metadata, where ansible-doc finds every module it ships."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTION = REPO / "collections" / "ansible_collections" / "stackwright" / "cloud"
BIN = Path(sys.executable).parent


def test_the_collection_builds_installs_and_documents_every_module(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    # Away from the checkout: its ansible.cfg names the source tree as a collections path ("already installed").
    env.update(ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), HOME=str(tmp_path), ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", str(COLLECTION), "--output-path", str(tmp_path)],
                   check=True, capture_output=True, env=env, cwd=tmp_path)  # fmt: skip
    (artifact,) = tmp_path.glob("stackwright-cloud-*.tar.gz")
    installed = tmp_path / "installed"
    # --no-deps: openstack.cloud comes from the pinned ansible package, not from Galaxy (no network here).
    subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--no-deps", "-p", str(installed), str(artifact)],
                   check=True, capture_output=True, env=env, cwd=tmp_path)  # fmt: skip
    root = installed / "ansible_collections" / "stackwright" / "cloud"
    assert not (root / "tests" / "output").exists()
    for shipped_file in ("LICENSE", "README.md", "CHANGELOG.md", "changelogs/config.yaml", "changelogs/changelog.yaml",
                         "meta/runtime.yml"):  # fmt: skip
        assert (root / shipped_file).is_file(), shipped_file
    shipped = sorted(p.stem for p in (root / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    source = sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    assert shipped == source
    env["ANSIBLE_COLLECTIONS_PATH"] = str(installed)
    listed = subprocess.run([BIN / "ansible-doc", "--list", "--json", "stackwright.cloud", "-t", "module"],
                            check=True, capture_output=True, text=True, env=env, cwd=tmp_path).stdout  # fmt: skip
    assert sorted(name.removeprefix("stackwright.cloud.") for name in json.loads(listed)) == shipped
    docs = subprocess.run([BIN / "ansible-doc", "--json", *(f"stackwright.cloud.{m}" for m in shipped)],
                          check=True, capture_output=True, text=True, env=env, cwd=tmp_path).stdout  # fmt: skip
    for name, doc in json.loads(docs).items():
        assert doc["doc"]["short_description"] and doc["examples"] and doc["return"], name
