# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.galera_cluster against a simulated MariaDB host (commands and grastate.dat)."""

import os

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import galera_cluster
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module

UUID = "6b2a7c1e-0f5d-11f0-9a55-0e8e3b2d4c11"
ADDRESSES = ["10.89.82.11:4567", "10.89.82.12:4567", "10.89.82.13:4567"]
SOCKET_ERROR = "ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)"

# my_print_defaults --mysqld on a controller deployed by roles/mariadb (Debian's files plus 99-stackwright.cnf).
SERVER_OPTIONS = """\
--user=mysql
--pid-file=/run/mysqld/mysqld.pid
--basedir=/usr
--datadir=/var/lib/mysql
--tmpdir=/tmp
--lc-messages-dir=/usr/share/mysql
--lc-messages=en_US
--skip-external-locking
--bind-address=10.89.82.11
--port=3306
--skip-name-resolve
--character-set-server=utf8mb4
--collation-server=utf8mb4_general_ci
--wsrep_on=ON
--wsrep_provider=/usr/lib/galera/libgalera_smm.so
--wsrep_cluster_name=stackwright
--wsrep_cluster_address=gcomm://10.89.82.11:4567,10.89.82.12:4567,10.89.82.13:4567
--wsrep_node_address=10.89.82.11
--wsrep_node_name=ctl1
--wsrep_sst_method=mariabackup
--wsrep_sst_auth=mariabackup:s3cret
--binlog_format=ROW
--innodb_autoinc_lock_mode=2
"""

RECOVER_LOG = """\
2026-05-09 12:00:01 0 [Note] Starting MariaDB 11.8.3-MariaDB-0+deb13u1 source revision 2f1b6a7c as process 4242
2026-05-09 12:00:01 0 [Note] InnoDB: Initializing buffer pool, total size = 1.000GiB, chunk size = 16.000MiB
2026-05-09 12:00:01 0 [Note] InnoDB: Completed initialization of buffer pool
2026-05-09 12:00:01 0 [Note] InnoDB: Starting crash recovery from checkpoint LSN=46846
2026-05-09 12:00:01 0 [Note] InnoDB: End of log at LSN=47629
2026-05-09 12:00:01 0 [Note] InnoDB: log sequence number 47629; transaction id 18391
2026-05-09 12:00:01 0 [Warning] InnoDB: Skipping buffer pool dump/restore during wsrep recovery.
2026-05-09 12:00:01 0 [Note] Plugin 'wsrep-provider' is disabled.
2026-05-09 12:00:01 0 [Note] WSREP: Recovered position: {uuid}:{seqno}
"""

RECOVER_LOCKED = """\
2026-05-09 12:00:01 0 [Note] Starting MariaDB 11.8.3-MariaDB-0+deb13u1 source revision 2f1b6a7c as process 4242
2026-05-09 12:00:01 0 [ERROR] InnoDB: Unable to lock ./ibdata1 error: 11
2026-05-09 12:00:01 0 [Note] InnoDB: Check that you do not already have another mariadbd process using the same \
InnoDB data or log files.
2026-05-09 12:00:01 0 [ERROR] Plugin 'InnoDB' registration as a STORAGE ENGINE failed.
2026-05-09 12:00:01 0 [ERROR] Aborting
"""


def grastate(seqno, safe):
    return f"# GALERA saved state\nversion: 2.1\nuuid:    {UUID}\nseqno:   {seqno}\nsafe_to_bootstrap: {safe}\n"


def wsrep_output(cluster_status="Primary", comment="Synced", size=3, last_committed=18342):
    return (
        "wsrep_on\t1\n"
        f"wsrep_cluster_size\t{size}\n"
        f"wsrep_cluster_state_uuid\t{UUID}\n"
        f"wsrep_cluster_status\t{cluster_status}\n"
        "wsrep_connected\tON\n"
        f"wsrep_last_committed\t{last_committed}\n"
        f"wsrep_local_state\t{4 if comment == 'Synced' else 1}\n"
        f"wsrep_local_state_comment\t{comment}\n"
        "wsrep_ready\tON\n"
    )


class MariaDBHost:
    """Answers the module's commands like a Debian 13 controller; galera_new_cluster starts a Primary node."""

    def __init__(self, datadir):
        self.datadir = datadir
        self.service = "inactive"
        self.wsrep = None
        self.recover_log = ""
        self.recover_rc = 0
        self.new_cluster_rc = 0
        self.new_cluster_starts = True
        self.primary_after_polls = 0
        self.calls = []

    def run_command(self, argv, **_kwargs):
        assert isinstance(argv, list), "commands are argv lists"
        self.calls.append(argv)
        tool, args = os.path.basename(argv[0]), argv[1:]
        if tool == "systemctl":
            assert args[0] == "is-active"
            return (0 if self.service == "active" else 3), self.service + "\n", ""
        if tool == "mariadb":
            assert "--user=root" in args and "--socket=/run/mysqld/mysqld.sock" in args
            if self.service != "active" or self.wsrep is None:
                return 1, "", SOCKET_ERROR + "\n"
            if self.primary_after_polls:
                self.primary_after_polls -= 1
                return 0, wsrep_output("non-Primary", "Initialized", size=0), ""
            return 0, self.wsrep, ""
        if tool == "my_print_defaults":
            return 0, SERVER_OPTIONS, ""
        if tool == "mariadbd":
            return self.recover_rc, "", self.recover_log
        if tool == "galera_new_cluster":
            assert args == ["mariadb"]
            if self.new_cluster_rc:
                return self.new_cluster_rc, "", "Job for mariadb.service failed because the control process exited.\n"
            if not self.new_cluster_starts:
                # Its last command (systemctl set-environment) succeeds, so it exits 0 anyway.
                self.service = "failed"
                return 0, "", "Job for mariadb.service failed because the control process exited with error code.\n"
            self.service = "active"
            self.wsrep = wsrep_output(size=1)
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def ran(self, tool):
        return [argv for argv in self.calls if os.path.basename(argv[0]) == tool]

    @property
    def grastate_path(self):
        return self.datadir / "grastate.dat"


@pytest.fixture
def host(tmp_path, monkeypatch):
    fake = MariaDBHost(tmp_path)

    patch_module(monkeypatch, fake, bin_dir="/usr/bin")
    monkeypatch.setattr(galera_cluster.time, "sleep", lambda _seconds: None)
    return fake


def run_module(host, **args):
    args.setdefault("node_name", "ctl1")
    args.setdefault("datadir", str(host.datadir))
    with patch_module_args(args), pytest.raises(Exited) as caught:
        galera_cluster.main()
    return caught.value


def stopped_member(name, seqno, safe=False, recovered=True):
    """What state=status returned on another, stopped member."""
    return {
        "node_name": name,
        "service": "inactive",
        "running": False,
        "wsrep_cluster_status": None,
        "grastate": {"present": True, "version": "2.1", "uuid": UUID, "seqno": -1 if recovered else seqno,
                     "safe_to_bootstrap": safe},
        "recovered": {"uuid": UUID, "seqno": seqno} if recovered else None,
        "recover_error": None,
        "cluster_address": ADDRESSES,
    }  # fmt: skip


def gather(host, **args):
    """This host's own status, the way the playbook gathers it before state=bootstrapped."""
    return run_module(host, recover_position=True, **args).result["galera"]


# --- state: status ---------------------------------------------------------------------------------------------------


def test_status_of_a_synced_member(host):
    host.service = "active"
    host.wsrep = wsrep_output()
    host.grastate_path.write_text(grastate(-1, 0))
    result = run_module(host).result
    galera = result["galera"]
    assert result["changed"] is False
    assert galera["node_name"] == "ctl1"
    assert galera["running"] is True
    assert galera["wsrep_on"] is True
    assert galera["wsrep_cluster_size"] == 3
    assert galera["wsrep_cluster_status"] == "Primary"
    assert galera["wsrep_local_state_comment"] == "Synced"
    assert galera["wsrep_ready"] is True
    assert galera["wsrep_cluster_state_uuid"] == UUID
    assert galera["grastate"] == {"present": True, "version": "2.1", "uuid": UUID, "seqno": -1,
                                  "safe_to_bootstrap": False}  # fmt: skip
    assert (galera["seqno"], galera["position_source"]) == (18342, "running")
    assert galera["cluster_address"] == ADDRESSES
    assert host.ran("mariadbd") == []


def test_status_never_returns_the_sst_password(host):
    host.grastate_path.write_text(grastate(12, 1))
    assert "s3cret" not in repr(run_module(host).result)


def test_status_of_a_crashed_member_without_recovery_leaves_the_position_unknown(host):
    host.grastate_path.write_text(grastate(-1, 0))
    galera = run_module(host).result["galera"]
    assert galera["running"] is False
    assert galera["wsrep_cluster_status"] is None
    assert galera["wsrep_on"] is True  # from the configuration
    assert galera["seqno"] is None
    assert galera["recovered"] is None
    assert host.ran("mariadbd") == []


def test_status_recovers_the_position_of_a_crashed_member(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=18350)
    galera = run_module(host, recover_position=True).result["galera"]
    assert host.ran("mariadbd") == [["/usr/bin/mariadbd", "--user=mysql", "--wsrep-recover", "--disable-log-error"]]
    assert galera["recovered"] == {"uuid": UUID, "seqno": 18350}
    assert (galera["uuid"], galera["seqno"], galera["position_source"]) == (UUID, 18350, "recovered")
    assert galera["recover_error"] is None


def test_status_recovers_in_check_mode_too(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=7)
    result = run_module(host, recover_position=True, _ansible_check_mode=True).result
    assert result["changed"] is False
    assert result["galera"]["seqno"] == 7


def test_status_does_not_recover_a_clean_position(host):
    host.grastate_path.write_text(grastate(18342, 1))
    galera = run_module(host, recover_position=True).result["galera"]
    assert host.ran("mariadbd") == []
    assert (galera["seqno"], galera["position_source"]) == (18342, "grastate")
    assert galera["grastate"]["safe_to_bootstrap"] is True


def test_status_never_recovers_on_a_running_server(host):
    host.service = "activating"
    host.grastate_path.write_text(grastate(-1, 0))
    galera = run_module(host, recover_position=True).result["galera"]
    assert host.ran("mariadbd") == []
    assert galera["running"] is True
    assert "needs the server stopped" in galera["recover_error"]


def test_a_failed_recovery_is_reported_not_fatal(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_rc, host.recover_log = 1, RECOVER_LOCKED
    result = run_module(host, recover_position=True).result
    assert "failed" not in result
    assert result["galera"]["recovered"] is None
    assert result["galera"]["seqno"] is None
    assert "Unable to lock ./ibdata1" in result["galera"]["recover_error"]


def test_status_without_grastate(host):
    galera = run_module(host).result["galera"]
    assert galera["grastate"] == {"present": False, "version": None, "uuid": None, "seqno": None,
                                  "safe_to_bootstrap": None}  # fmt: skip


def test_status_of_an_active_unit_that_does_not_answer(host):
    host.service = "active"
    galera = run_module(host).result["galera"]
    assert galera["running"] is True
    assert galera["wsrep_cluster_status"] is None
    assert "Can't connect to local server" in galera["query_error"]


def test_node_name_defaults_to_the_short_host_name(host, monkeypatch):
    monkeypatch.setattr(galera_cluster.socket, "gethostname", lambda: "ctl3.example.org")
    with patch_module_args({"datadir": str(host.datadir)}), pytest.raises(Exited) as caught:
        galera_cluster.main()
    assert caught.value.result["galera"]["node_name"] == "ctl3"


# --- state: bootstrapped ---------------------------------------------------------------------------------------------


def test_the_most_advanced_member_bootstraps(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=18350)
    cluster = [gather(host), stopped_member("ctl2", 18342), stopped_member("ctl3", 18349)]
    host.calls.clear()

    result = run_module(host, state="bootstrapped", cluster_status=cluster).result

    assert result["changed"] is True
    assert result["bootstrap_host"] == "ctl1"
    assert result["bootstrap"]["reason"] == "the highest seqno 18350"
    assert host.grastate_path.read_text() == grastate(-1, 1)
    assert host.ran("galera_new_cluster") == [["/usr/bin/galera_new_cluster", "mariadb"]]
    assert result["galera"]["wsrep_cluster_status"] == "Primary"
    assert host.ran("mariadbd") == []


def test_safe_to_bootstrap_is_kept_and_the_file_untouched_when_already_set(host):
    host.grastate_path.write_text(grastate(18342, 1))
    before = host.grastate_path.stat().st_mtime_ns
    cluster = [gather(host), stopped_member("ctl2", 18342), stopped_member("ctl3", 18342)]

    result = run_module(host, state="bootstrapped", cluster_status=cluster).result

    assert result["changed"] is True
    assert "safe_to_bootstrap: 1" in result["bootstrap"]["reason"]
    assert host.grastate_path.stat().st_mtime_ns == before
    assert len(host.ran("galera_new_cluster")) == 1


def test_safe_to_bootstrap_keeps_the_file_mode(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.grastate_path.chmod(0o660)
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=50)
    cluster = [gather(host), stopped_member("ctl2", 3), stopped_member("ctl3", 4)]
    run_module(host, state="bootstrapped", cluster_status=cluster)
    assert host.grastate_path.stat().st_mode & 0o777 == 0o660
    assert [p.name for p in host.datadir.iterdir()] == ["grastate.dat"]


def test_another_member_bootstraps_and_this_one_changes_nothing(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=100)
    cluster = [gather(host), stopped_member("ctl2", 101), stopped_member("ctl3", 99)]
    host.calls.clear()

    result = run_module(host, state="bootstrapped", cluster_status=cluster).result

    assert result["changed"] is False
    assert result["bootstrap_host"] == "ctl2"
    assert "ctl2 bootstraps the cluster" in result["msg"]
    assert host.ran("galera_new_cluster") == []
    assert host.grastate_path.read_text() == grastate(-1, 0)


def test_check_mode_reports_the_bootstrap_and_does_nothing(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=200)
    cluster = [gather(host), stopped_member("ctl2", 101), stopped_member("ctl3", 99)]

    result = run_module(host, state="bootstrapped", cluster_status=cluster, _ansible_check_mode=True).result

    assert result["changed"] is True
    assert result["msg"].startswith("Would set safe_to_bootstrap: 1 in grastate.dat and run galera_new_cluster on ctl1")
    assert host.ran("galera_new_cluster") == []
    assert host.grastate_path.read_text() == grastate(-1, 0)


def test_a_named_bootstrap_host_settles_a_tie(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=9)
    cluster = [gather(host), stopped_member("ctl2", 9), stopped_member("ctl3", 9)]

    with pytest.raises(Failed, match="share the highest seqno 9"):
        run_module(host, state="bootstrapped", cluster_status=cluster)
    assert host.ran("galera_new_cluster") == []

    result = run_module(host, state="bootstrapped", cluster_status=cluster, bootstrap_host="ctl1").result
    assert result["changed"] is True
    assert len(host.ran("galera_new_cluster")) == 1


def test_a_refusal_changes_nothing_and_says_so(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=9)
    running = dict(stopped_member("ctl2", 9), service="active", running=True, wsrep_cluster_status="Primary")
    cluster = [gather(host), running, stopped_member("ctl3", 8)]

    with pytest.raises(Failed) as caught:
        run_module(host, state="bootstrapped", cluster_status=cluster)

    assert caught.value.result["msg"].startswith("Refusing to bootstrap: The cluster is not fully down")
    assert caught.value.result["msg"].endswith("Nothing was changed.")
    assert host.ran("galera_new_cluster") == []
    assert host.grastate_path.read_text() == grastate(-1, 0)


def test_this_node_must_be_in_cluster_status(host):
    host.grastate_path.write_text(grastate(10, 1))
    cluster = [stopped_member("ctl2", 9), stopped_member("ctl3", 9)]
    with pytest.raises(Failed, match=r"This node \(ctl1\) is not in cluster_status \(ctl2, ctl3\)"):
        run_module(host, state="bootstrapped", cluster_status=cluster)


def test_a_grastate_changed_since_the_status_was_gathered_is_refused(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=50)
    cluster = [gather(host), stopped_member("ctl2", 3), stopped_member("ctl3", 4)]
    host.grastate_path.write_text(grastate(-1, 1))

    with pytest.raises(Failed, match="changed since the status was gathered"):
        run_module(host, state="bootstrapped", cluster_status=cluster)
    assert host.ran("galera_new_cluster") == []


def test_a_server_started_since_the_status_was_gathered_is_refused(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=50)
    cluster = [gather(host), stopped_member("ctl2", 3), stopped_member("ctl3", 4)]
    host.service = "activating"

    with pytest.raises(Failed, match="mariadb is activating on ctl1 since the status was gathered"):
        run_module(host, state="bootstrapped", cluster_status=cluster)
    assert host.ran("galera_new_cluster") == []


def test_a_failed_galera_new_cluster_fails_the_task(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=50)
    cluster = [gather(host), stopped_member("ctl2", 3), stopped_member("ctl3", 4)]
    host.new_cluster_rc = 1

    with pytest.raises(Failed) as caught:
        run_module(host, state="bootstrapped", cluster_status=cluster)

    assert caught.value.result["changed"] is True
    assert "galera_new_cluster failed (exit 1) on ctl1" in caught.value.result["msg"]
    assert "journalctl -u mariadb" in caught.value.result["msg"]


def test_a_server_that_did_not_start_fails_at_once(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=50)
    cluster = [gather(host), stopped_member("ctl2", 3), stopped_member("ctl3", 4)]
    host.calls.clear()
    host.new_cluster_starts = False

    with pytest.raises(Failed) as caught:
        run_module(host, state="bootstrapped", cluster_status=cluster)

    assert caught.value.result["changed"] is True
    assert "ran galera_new_cluster but mariadb is failed" in caught.value.result["msg"]
    assert len(host.ran("systemctl")) == 2  # before and once after galera_new_cluster: no waiting


def test_waits_until_the_bootstrapped_node_is_primary(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=50)
    cluster = [gather(host), stopped_member("ctl2", 3), stopped_member("ctl3", 4)]
    host.calls.clear()
    host.primary_after_polls = 3

    result = run_module(host, state="bootstrapped", cluster_status=cluster).result

    assert result["galera"]["wsrep_cluster_status"] == "Primary"
    after_bootstrap = host.calls[host.calls.index(["/usr/bin/galera_new_cluster", "mariadb"]) :]
    assert len([argv for argv in after_bootstrap if argv[0].endswith("/mariadb")]) == 4


def test_gives_up_when_the_node_never_becomes_primary(host):
    host.grastate_path.write_text(grastate(-1, 0))
    host.recover_log = RECOVER_LOG.format(uuid=UUID, seqno=50)
    cluster = [gather(host), stopped_member("ctl2", 3), stopped_member("ctl3", 4)]
    host.calls.clear()
    host.primary_after_polls = 1000

    with pytest.raises(Failed) as caught:
        run_module(host, state="bootstrapped", cluster_status=cluster, timeout=20)

    assert caught.value.result["changed"] is True
    assert "not in a Primary component after 20 s" in caught.value.result["msg"]
    assert len(host.ran("mariadb")) == 20 // galera_cluster.POLL_SECONDS


def test_cluster_status_is_required_to_bootstrap(host):
    with pytest.raises(Failed, match="cluster_status"):
        run_module(host, state="bootstrapped")
