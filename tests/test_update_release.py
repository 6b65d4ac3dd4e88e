# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""scripts/update-release: .in parsing, the constraints file it writes, and refusing to write on failures.

pip and venv are never run: the script's subprocess module is replaced by a fake that answers like pip.
"""

import datetime
import importlib.machinery
import importlib.util
import json
import os
import stat
import subprocess
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "update-release"
TODAY = datetime.date(2026, 11, 22)


def _load_script():
    loader = importlib.machinery.SourceFileLoader("update_release", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


ur = _load_script()

INSTALLED = [
    {"name": "keystone", "version": "30.0.0"},
    {"name": "PyMySQL", "version": "1.2.4"},
    {"name": "oslo.cache", "version": "4.3.0"},
    {"name": "pip", "version": "25.3"},
    {"name": "setuptools", "version": "80.0.0"},
    {"name": "zope_interface", "version": "8.0"},
]


class FakePip:
    """Answers the commands update-release runs, as a venv with pip would; records them."""

    def __init__(self, installed=None, check_rc=0, check_output="No broken requirements found.\n", install_rc=0):
        self.installed = INSTALLED if installed is None else installed
        self.check_rc = check_rc
        self.check_output = check_output
        self.install_rc = install_rc
        self.calls = []

    def run(self, argv, **kwargs):
        argv = [str(arg) for arg in argv]
        self.calls.append(argv)
        if argv[1] == "-c":
            return self._done(argv, stdout="3.13.0\n")
        if argv[1:3] == ["-m", "venv"]:
            return self._done(argv)
        if "install" in argv and "--requirement" in argv:
            if self.install_rc:
                return self._done(argv, self.install_rc, stderr="ERROR: No matching distribution found for nova<0\n")
            return self._done(argv, stdout="Successfully installed ...\n")
        if "install" in argv:
            return self._done(argv)
        if "check" in argv:
            return self._done(argv, self.check_rc, stdout=self.check_output)
        if "list" in argv:
            return self._done(argv, stdout=json.dumps(self.installed))
        raise AssertionError(f"unexpected command {argv}")

    @staticmethod
    def _done(argv, returncode=0, stdout="", stderr=""):
        return subprocess.CompletedProcess(argv, returncode, stdout, stderr)

    def commands(self, word):
        return [argv for argv in self.calls if word in argv]


@pytest.fixture
def releases(tmp_path, monkeypatch):
    directory = tmp_path / "releases"
    directory.mkdir()
    (directory / "2026.2.in").write_text("# services\nkeystone>=30,<31\nPyMySQL  # DB driver\noslo.cache\n")
    monkeypatch.setattr(ur, "RELEASES", directory)
    return directory


@pytest.fixture
def fake_pip(monkeypatch):
    fake = FakePip()
    monkeypatch.setattr(ur, "subprocess", types.SimpleNamespace(run=fake.run))
    return fake


def _generate(**kwargs):
    return ur.generate("2026.2", python="/fake/bin/python3.13", today=TODAY, **kwargs)


# --- parsing the .in file ---------------------------------------------------------------------------


def test_parse_skips_comments_and_blank_lines_and_normalises_names():
    text = "# header\n\nKeystone>=30,<31\nPyMySQL  # driver\noslo.cache[dogpile] >= 4.0 ; python_version >= '3.11'\n"
    requirements = ur.parse_requirements(text)
    assert [requirement.name for requirement in requirements] == ["keystone", "pymysql", "oslo-cache"]
    assert requirements[1].line == "PyMySQL"
    assert requirements[2].line == "oslo.cache[dogpile] >= 4.0 ; python_version >= '3.11'"
    assert [requirement.lineno for requirement in requirements] == [3, 4, 5]


def test_the_committed_series_file_parses_and_names_the_services():
    requirements = ur.parse_requirements((REPO / "releases" / "2026.2.in").read_text())
    names = {requirement.name for requirement in requirements}
    assert {"keystone", "glance", "openstack-placement", "nova", "neutron", "cinder", "horizon", "swift"} <= names
    assert {"pymysql", "pymemcache", "python-memcached"} <= names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-r other.txt\n", "pip options are not allowed"),
        ("--index-url https://example.org/simple\n", "pip options are not allowed"),
        ("-e git+https://opendev.org/openstack/nova#egg=nova\n", "pip options are not allowed"),
        ("nova @ https://example.org/nova-34.0.0.tar.gz\n", "not a requirement"),
        ("https://example.org/nova-34.0.0.tar.gz\n", "not a requirement"),
        ("keystone>>30\n", "not a requirement"),
        ("keystone 30\n", "not a requirement"),
        ("PyMySQL\npymysql>=1\n", "already listed on line 1"),
        ("oslo.cache\noslo_cache\n", "already listed on line 1"),
        ("# only comments\n\n", "no requirements"),
    ],
)
def test_parse_refuses_what_is_not_a_plain_requirement(text, message):
    with pytest.raises(ur.ReleaseError, match=message):
        ur.parse_requirements(text, source="releases/x.in")


def test_parse_errors_name_the_file_and_line():
    with pytest.raises(ur.ReleaseError, match=r"releases/x\.in:2: "):
        ur.parse_requirements("nova\n--pre\n", source="releases/x.in")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("PyMySQL", "pymysql"), ("oslo.cache", "oslo-cache"), ("zope_interface", "zope-interface"), ("a-_.b", "a-b")],
)
def test_normalise_follows_pep_503(name, expected):
    assert ur.normalise(name) == expected


# --- the constraints file -----------------------------------------------------------------------------


def test_select_pins_drops_pip_keeps_setuptools_and_sorts():
    pins = ur.select_pins(INSTALLED)
    assert list(pins) == ["keystone", "oslo-cache", "pymysql", "setuptools", "zope-interface"]
    assert pins["pymysql"] == "1.2.4"


def test_render_writes_the_header_then_sorted_pins():
    text = ur.render("2026.2", {"zope-interface": "8.0", "keystone": "30.0.0"}, "3.13.0", TODAY)
    lines = text.splitlines()
    header = [line for line in lines if line.startswith("#")]
    assert lines[: len(header)] == header, "the header comes first"
    assert "generated by scripts/update-release from releases/2026.2.in" in header[0].lower()
    assert "do not edit by hand" in header[0]
    assert any("2026-11-22" in line and "Python 3.13.0" in line for line in header)
    assert lines[len(header) :] == ["keystone==30.0.0", "zope-interface==8.0"]
    assert text.endswith("\n")


def test_parse_pins_reads_back_what_render_wrote():
    pins = {"keystone": "30.0.0", "pymysql": "1.2.4"}
    assert ur.parse_pins(ur.render("2026.2", pins, "3.13.0", TODAY)) == pins
    with pytest.raises(ur.ReleaseError, match="line 2"):
        ur.parse_pins("keystone==30.0.0\nnova>=34\n")


def test_the_committed_constraints_are_normalised_sorted_and_cover_the_in_file():
    text = (REPO / "releases" / "2026.2.txt").read_text()
    pins = ur.parse_pins(text)
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    names = [line.split("==")[0] for line in body]
    assert names == sorted(names)
    assert all(name == ur.normalise(name) for name in names)
    assert "pip" not in pins
    requirements = ur.parse_requirements((REPO / "releases" / "2026.2.in").read_text())
    assert {requirement.name for requirement in requirements} <= pins.keys()


def test_write_atomically_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "2026.2.txt"
    target.write_text("old\n")
    ur.write_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["2026.2.txt"]


def test_write_atomically_keeps_the_old_file_when_the_replace_fails(tmp_path, monkeypatch):
    target = tmp_path / "2026.2.txt"
    target.write_text("old\n")

    def failing_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(ur.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        ur.write_atomically(target, "new\n")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["2026.2.txt"]


# --- the whole run with pip faked ---------------------------------------------------------------------


def test_generate_installs_the_in_file_and_writes_the_pins(releases, fake_pip):
    assert _generate() == 0
    text = (releases / "2026.2.txt").read_text()
    assert ur.parse_pins(text) == ur.select_pins(INSTALLED)
    assert "Python 3.13.0" in text
    [install] = [argv for argv in fake_pip.commands("install") if "--requirement" in argv]
    assert "--no-compile" in install
    assert install[install.index("--requirement") + 1] == str(releases / "2026.2.in")
    assert fake_pip.commands("check"), "pip check must run"


def test_generate_refuses_to_write_when_pip_check_fails(releases, fake_pip, capsys, monkeypatch):
    (releases / "2026.2.txt").write_text("keystone==29.0.0\n")
    fake_pip.check_rc = 1
    fake_pip.check_output = "nova 34.0.0 has requirement oslo.db>=18, but you have oslo-db 17.0.0.\n"
    monkeypatch.setattr(ur, "find_python", lambda requested: (requested, "3.13.0"))
    status = ur.main(["--python", "/fake/bin/python3.13", "2026.2"])
    assert status == 2
    assert (releases / "2026.2.txt").read_text() == "keystone==29.0.0\n"
    err = capsys.readouterr().err
    assert "pip check" in err
    assert "oslo.db>=18, but you have oslo-db 17.0.0" in err
    assert "nothing was written" in err
    assert not fake_pip.commands("list"), "nothing is listed once pip check has failed"


def test_generate_reports_pip_install_output_and_writes_nothing(releases, fake_pip):
    fake_pip.install_rc = 1
    with pytest.raises(ur.ReleaseError, match=r"pip install failed \(exit 1\):\nERROR: No matching distribution"):
        _generate()
    assert not (releases / "2026.2.txt").exists()


def test_generate_refuses_a_result_without_a_top_level_requirement(releases, fake_pip):
    fake_pip.installed = [entry for entry in INSTALLED if entry["name"] != "PyMySQL"]
    with pytest.raises(ur.ReleaseError, match="lacks top-level requirements: PyMySQL"):
        _generate()
    assert not (releases / "2026.2.txt").exists()


def test_generate_names_the_known_series_when_the_in_file_is_missing(releases, fake_pip):
    with pytest.raises(ur.ReleaseError, match=r"releases/2099\.1\.in does not exist \(known series: 2026\.2\)"):
        ur.generate("2099.1", python="/fake/bin/python3.13")
    assert fake_pip.calls == []


@pytest.mark.parametrize("series", ["../etc", "2026.2/x", ""])
def test_generate_refuses_series_names_that_are_paths(releases, fake_pip, series):
    with pytest.raises(ur.ReleaseError, match="bad series name"):
        ur.generate(series, python="/fake/bin/python3.13")


def test_check_ignores_the_header_and_does_not_write(releases, fake_pip, capsys):
    committed = ur.render("2026.2", ur.select_pins(INSTALLED), "3.13.1", datetime.date(2026, 1, 1))
    (releases / "2026.2.txt").write_text(committed)
    assert _generate(check=True) == 0
    assert "up to date" in capsys.readouterr().out
    assert (releases / "2026.2.txt").read_text() == committed


def test_check_reports_the_changed_pins_and_does_not_write(releases, fake_pip, capsys):
    stale = dict(ur.select_pins(INSTALLED), keystone="30.0.0.0rc1", retired="1.0")
    del stale["setuptools"]
    committed = ur.render("2026.2", stale, "3.13.0", TODAY)
    (releases / "2026.2.txt").write_text(committed)
    assert _generate(check=True) == 1
    out = capsys.readouterr().out
    assert "out of date" in out
    assert "~ keystone 30.0.0.0rc1 -> 30.0.0" in out
    assert "- retired==1.0" in out
    assert "+ setuptools==80.0.0" in out
    assert (releases / "2026.2.txt").read_text() == committed


def test_check_without_a_committed_file_is_out_of_date(releases, fake_pip):
    assert _generate(check=True) == 1
    assert not (releases / "2026.2.txt").exists()


# --- choosing the interpreter -------------------------------------------------------------------------


def test_find_python_refuses_a_python_that_does_not_run(monkeypatch):
    monkeypatch.setattr(ur, "python_version", lambda python: None)
    with pytest.raises(ur.ReleaseError, match="--python /nowhere/python does not run"):
        ur.find_python("/nowhere/python")


def test_find_python_skips_a_broken_shim_and_uses_pyenv(tmp_path, monkeypatch):
    pyenv_python = tmp_path / "versions" / "3.13.0" / "bin" / "python3.13"
    pyenv_python.parent.mkdir(parents=True)
    pyenv_python.touch()
    versions = {"/shims/python3.13": None, str(pyenv_python): "3.13.0"}
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setattr(ur.shutil, "which", lambda name: "/shims/python3.13")
    monkeypatch.setattr(ur, "python_version", lambda python: versions.get(python))
    assert ur.find_python() == (str(pyenv_python), "3.13.0")


def test_find_python_says_what_to_do_when_there_is_none(monkeypatch):
    monkeypatch.setenv("PYENV_ROOT", "/nonexistent")
    monkeypatch.setattr(ur.shutil, "which", lambda name: None)
    monkeypatch.setattr(ur.glob, "glob", lambda pattern: [])
    with pytest.raises(ur.ReleaseError, match=r"no python3\.13 found.*pass --python"):
        ur.find_python()
