# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The stackwright.cloud CHANGELOG.md is what antsibull-changelog writes from the changelog fragments and
changelog.yaml: it fails on a hand edit, or on a fragment committed without `make changelog`. ansible-test's changelog
sanity test lints the fragments, but never compares CHANGELOG.md with them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The venv `make changelog` (and `make unit`) builds once; this test installs nothing.
CACHE = Path(os.environ.get("STACKWRIGHT_CACHE") or Path.home() / ".cache" / "stackwright")
ANTSIBULL_CHANGELOG = CACHE / "antsibull-changelog" / "bin" / "antsibull-changelog"


@pytest.mark.skipif(not ANTSIBULL_CHANGELOG.exists(), reason=f"no {ANTSIBULL_CHANGELOG}: run `make changelog` once")
def test_changelog_md_is_what_the_fragments_give():
    run = subprocess.run([sys.executable, REPO / "scripts" / "collection-changelog", "--check",
                          "--antsibull-changelog", ANTSIBULL_CHANGELOG],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
