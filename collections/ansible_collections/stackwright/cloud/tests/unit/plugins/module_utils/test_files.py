# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""module_utils/files.py: output tails and atomic writes."""

import os

import pytest
from ansible_collections.stackwright.cloud.plugins.module_utils.files import tail, write_atomically


def test_tail_keeps_the_last_lines():
    assert tail("a\nb\nc\nd\n", 2) == "c\nd"
    assert tail(None) == ""


def test_a_new_file_is_written_whole_and_prepared(tmp_path):
    target = tmp_path / "key"
    prepared = []

    def prepare(path):
        prepared.append(path)
        os.chmod(path, 0o600)

    write_atomically(str(target), "secret", prepare=prepare)
    assert target.read_text() == "secret"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert prepared and prepared[0] != str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]


def test_the_old_file_stays_when_the_write_fails(tmp_path):
    target = tmp_path / "grastate.dat"
    target.write_text("old")

    def refuse(_tmp, _path):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(str(target), "new", move=refuse)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grastate.dat"]
