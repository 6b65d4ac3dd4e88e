"""The Python scripts that roles run on their hosts, run here against stand-ins for the libraries they use."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parent.parent / "roles"


def role_var(role, name):
    return yaml.safe_load((ROLES / role / "vars" / "main.yml").read_text())[name]


def write_package(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def run_script(script, path, *args):
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env={"PYTHONPATH": str(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


# --- nova: the libvirt and QEMU versions and nova's minimums ---------------------------------------------------------

FAKE_LIBVIRT = """
    class _Conn:
        def getLibVersion(self):
            return 11003000
        def getVersion(self):
            return 10001002
    def openReadOnly(uri):
        assert uri == "qemu:///system"
        return _Conn()
"""


@pytest.fixture
def nova_tree(tmp_path):
    write_package(
        tmp_path,
        {
            "libvirt.py": FAKE_LIBVIRT,
            "nova/__init__.py": "",
            "nova/virt/__init__.py": "",
            # The real package imports the driver here: importing it must not be needed.
            "nova/virt/libvirt/__init__.py": "raise ImportError('the driver was imported')\n",
        },
    )
    return tmp_path


def test_nova_minimums_come_from_the_source_without_importing_nova(nova_tree):
    write_package(
        nova_tree,
        {
            "nova/virt/libvirt/driver.py": """
                import nothing_that_exists_here
                MIN_LIBVIRT_VERSION = (8, 0, 0)
                MIN_QEMU_VERSION = (6, 2, 0)
            """
        },
    )
    result = run_script(role_var("nova", "__nova_hypervisor_versions_script"), nova_tree)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "libvirt": "11.3.0",
        "qemu": "10.1.2",
        "min_libvirt": "8.0.0",
        "min_qemu": "6.2.0",
    }


def test_nova_minimums_that_are_not_literals_are_imported(nova_tree):
    write_package(
        nova_tree,
        {
            "nova/virt/libvirt/__init__.py": "",
            "nova/virt/libvirt/driver.py": """
                BASE = (9, 1)
                MIN_LIBVIRT_VERSION = BASE + (0,)
                MIN_QEMU_VERSION = (7, 0, 0)
            """,
        },
    )
    result = run_script(role_var("nova", "__nova_hypervisor_versions_script"), nova_tree)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["min_libvirt"] == "9.1.0"
    assert json.loads(result.stdout)["min_qemu"] == "7.0.0"


# --- ceph: the RBD pools ---------------------------------------------------------------------------------------------

# librados and librbd stand-ins that keep the cluster in a JSON file, so that a second run sees the first one's work.
FAKE_RADOS = """
    import json, os
    STATE = os.environ["FAKE_CEPH_STATE"]
    def load():
        with open(STATE) as f:
            return json.load(f)
    def save(state):
        with open(STATE, "w") as f:
            json.dump(state, f)
    class Rados:
        def __init__(self, conffile, conf):
            assert conffile == "/etc/ceph/ceph.conf"
            assert int(conf["client_mount_timeout"]) > 0
            self.fresh_map = True
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return False
        def pool_exists(self, pool):
            return pool in load()["pools"]
        def wait_for_latest_osdmap(self):
            self.fresh_map = True
        def open_ioctx(self, pool):
            assert self.fresh_map, "opened a pool created since the last osdmap"
            return Ioctx(pool)
        def mon_command(self, cmd, inbuf):
            command = json.loads(cmd)
            state = load()
            state["log"].append(command)
            pool = command.get("pool")
            if command["prefix"] == "osd pool create":
                state["pools"][pool] = {"size": 3, "min_size": 2, "pg_num": command["pg_num"], "rbd": False}
                self.fresh_map = False
            elif command["prefix"] == "osd pool get":
                save(state)
                return 0, json.dumps({"pool": pool, command["var"]: state["pools"][pool][command["var"]]}).encode(), ""
            elif command["prefix"] == "osd dump":
                save(state)
                return 0, json.dumps({"require_min_compat_client": state["min_compat_client"]}).encode(), ""
            elif command["prefix"] == "osd set-require-min-compat-client":
                state["min_compat_client"] = command["version"]
            elif command["prefix"] == "osd pool set":
                if command["var"] == "size" and command["val"] == "1" and not command.get("yes_i_really_mean_it"):
                    return -1, b"", "pool size 1 needs --yes-i-really-mean-it"
                state["pools"][pool][command["var"]] = int(command["val"])
            save(state)
            return 0, b"", ""
    class Ioctx:
        def __init__(self, pool):
            self.pool = pool
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return False
"""

FAKE_RBD = """
    import rados
    class RBD:
        def pool_init(self, ioctx, force):
            state = rados.load()
            state["pools"][ioctx.pool]["rbd"] = True
            rados.save(state)
"""


@pytest.fixture
def ceph(tmp_path, monkeypatch):
    write_package(tmp_path, {"rados.py": FAKE_RADOS, "rbd.py": FAKE_RBD})
    state = tmp_path / "state.json"
    images = {"size": 1, "min_size": 1, "pg_num": 32, "rbd": True}
    state.write_text(json.dumps({"pools": {"images": images}, "min_compat_client": "luminous", "log": []}))

    script = role_var("ceph", "__ceph_pools_script")

    def run(size, *pools):
        result = subprocess.run(
            [sys.executable, "-c", script, "/etc/ceph/ceph.conf", str(size), "32", *pools],
            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "FAKE_CEPH_STATE": str(state)},
            capture_output=True,
            text=True,
            check=False,
        )
        return result, json.loads(state.read_text())

    return run


def test_missing_pools_are_created_initialised_and_sized(ceph):
    result, state = ceph(1, "images", "volumes", "vms")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "created volumes",
        "created vms",
        "size of volumes: 1",
        "size of vms: 1",
        "clients: mimic or later (RBD clone format 2)",
    ]
    assert state["pools"]["volumes"] == {"size": 1, "min_size": 1, "pg_num": 32, "rbd": True}
    assert state["pools"]["images"]["size"] == 1


def test_pools_in_place_print_nothing_and_write_nothing(ceph):
    ceph(1, "images", "volumes")
    result, state = ceph(1, "images", "volumes")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    writes = [command for command in state["log"] if command["prefix"] not in ("osd pool get", "osd dump")]
    assert len(writes) == 4  # the first run's create, two size settings and the client release only


def test_a_newer_client_release_is_left_alone(ceph, tmp_path):
    state_file = tmp_path / "state.json"
    state_file.write_text(state_file.read_text().replace('"luminous"', '"reef"'))
    result, state = ceph(1, "images")
    assert (result.returncode, result.stdout) == (0, "")
    assert state["min_compat_client"] == "reef"


def test_a_changed_size_sets_size_and_min_size(ceph):
    result, state = ceph(3, "images")
    assert result.stdout.splitlines() == ["size of images: 3", "clients: mimic or later (RBD clone format 2)"]
    assert state["pools"]["images"]["size"] == 3
    assert state["pools"]["images"]["min_size"] == 2


def test_a_refused_mon_command_fails_with_ceph_s_reason(ceph, tmp_path):
    (tmp_path / "rados.py").write_text(
        (tmp_path / "rados.py").read_text().replace('return 0, b"", ""', 'return -13, b"", "access denied"')
    )
    result, _state = ceph(1, "volumes")
    assert result.returncode == 1
    assert "osd pool create" in result.stderr
    assert "access denied" in result.stderr


# --- mariadb: the health check behind haproxy -------------------------------------------------------------------------

# A stand-in for the mariadb client: waits FAKE_DELAY seconds, then answers as a server in FAKE_STATE would
# ("refused" fails like a stopped server).
FAKE_MARIADB = """#!/bin/bash
sleep "${FAKE_DELAY:-0}"
case "$FAKE_STATE" in
  refused) echo "ERROR 2002 (HY000): Can't connect to local server through socket" >&2; exit 1 ;;
  synced) local_state=4 comment=Synced ;;
  donor) local_state=2 comment=Donor/Desynced ;;
esac
printf 'wsrep_on\\t1\\nwsrep_local_state\\t%s\\nwsrep_local_state_comment\\t%s\\n' "$local_state" "$comment"
printf 'wsrep_cluster_status\\tPrimary\\nwsrep_cluster_size\\t3\\n'
"""


@pytest.fixture
def node_check(tmp_path):
    """Run mariadb-node-check --http, rendered with this check timeout, against the stand-in client."""
    import jinja2

    template = (ROLES / "mariadb" / "templates" / "mariadb-node-check.j2").read_text()

    def run(check_timeout, state, delay=0):
        script = tmp_path / "mariadb-node-check"
        script.write_text(
            jinja2.Template(template).render(
                ansible_managed="test",
                __mariadb_socket="/run/mysqld/mysqld.sock",
                __mariadb_service="mariadb",
                mariadb_sync_timeout=900,
                mariadb_check_timeout=check_timeout,
            )
        )
        client = tmp_path / "bin" / "mariadb"
        client.parent.mkdir(exist_ok=True)
        client.write_text(FAKE_MARIADB)
        client.chmod(0o755)
        result = subprocess.run(
            ["bash", str(script), "--http"],
            input="GET / HTTP/1.1\r\nHost: check\r\n\r\n",
            env={"PATH": f"{client.parent}:/usr/bin:/bin", "FAKE_STATE": state, "FAKE_DELAY": str(delay)},
            capture_output=True,
            text=True,
            check=False,
        )
        # text mode reads the answer's CRLF line ends as plain newlines.
        status, _, body = result.stdout.partition("\n")
        return status, body

    return run


def test_a_synced_node_that_answers_late_is_reported_up(node_check):
    # Slower than the 3 s the check used to allow: a loaded node is alive.
    status, body = node_check(check_timeout=20, state="synced", delay=4)
    assert status == "HTTP/1.1 200 OK", body
    assert "Synced (wsrep_local_state 4, cluster Primary, size 3)" in body


def test_a_node_that_is_not_synced_is_reported_down(node_check):
    status, body = node_check(check_timeout=20, state="donor")
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert "Donor/Desynced" in body


def test_a_stopped_server_is_reported_down(node_check):
    status, body = node_check(check_timeout=20, state="refused")
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert "Can't connect to local server" in body


def test_a_server_that_never_answers_is_reported_down_at_the_check_timeout(node_check):
    status, body = node_check(check_timeout=1, state="synced", delay=60)
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert "no answer within 1 s" in body
