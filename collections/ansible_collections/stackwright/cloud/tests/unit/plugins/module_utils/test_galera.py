# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Parsers and the bootstrap decision of stackwright.cloud.galera_cluster (module_utils/galera.py)."""

import itertools

import pytest
from ansible_collections.stackwright.cloud.plugins.module_utils.galera import (
    NO_STATE_UUID,
    GaleraDecisionError,
    decide_bootstrap,
    effective_position,
    parse_cluster_address,
    parse_grastate,
    parse_recovered_position,
    parse_server_options,
    parse_wsrep_status,
    set_safe_to_bootstrap,
)

UUID = "6b2a7c1e-0f5d-11f0-9a55-0e8e3b2d4c11"
OTHER_UUID = "0d4f9b3a-2c61-11f0-8f0e-5254000a1b2c"
ADDRESSES = ["10.89.82.11:4567", "10.89.82.12:4567", "10.89.82.13:4567"]

# What Galera 4 writes on a clean shutdown of the last member, and after a crash.
GRASTATE_CLEAN = f"""\
# GALERA saved state
version: 2.1
uuid:    {UUID}
seqno:   18342
safe_to_bootstrap: 1
"""
GRASTATE_CRASHED = f"""\
# GALERA saved state
version: 2.1
uuid:    {UUID}
seqno:   -1
safe_to_bootstrap: 0
"""

# mariadbd --wsrep-recover --disable-log-error on MariaDB 11.8 after a crash (stderr).
RECOVER_LOG = f"""\
2026-05-09 12:00:01 0 [Note] Starting MariaDB 11.8.3-MariaDB-0+deb13u1 source revision 2f1b6a7c as process 4242
2026-05-09 12:00:01 0 [Note] InnoDB: Compressed tables use zlib 1.3.1
2026-05-09 12:00:01 0 [Note] InnoDB: Number of transaction pools: 1
2026-05-09 12:00:01 0 [Note] InnoDB: Using crc32 + pclmulqdq instructions
2026-05-09 12:00:01 0 [Note] InnoDB: Using liburing
2026-05-09 12:00:01 0 [Note] InnoDB: Initializing buffer pool, total size = 1.000GiB, chunk size = 16.000MiB
2026-05-09 12:00:01 0 [Note] InnoDB: Completed initialization of buffer pool
2026-05-09 12:00:01 0 [Note] InnoDB: Starting crash recovery from checkpoint LSN=46846
2026-05-09 12:00:01 0 [Note] InnoDB: End of log at LSN=47629
2026-05-09 12:00:01 0 [Note] InnoDB: To recover: 12 pages
2026-05-09 12:00:01 0 [Note] InnoDB: Opened 3 undo tablespaces
2026-05-09 12:00:01 0 [Note] InnoDB: 128 rollback segments in 3 undo tablespaces are active.
2026-05-09 12:00:01 0 [Note] InnoDB: log sequence number 47629; transaction id 18391
2026-05-09 12:00:01 0 [Warning] InnoDB: Skipping buffer pool dump/restore during wsrep recovery.
2026-05-09 12:00:01 0 [Note] Plugin 'FEEDBACK' is disabled.
2026-05-09 12:00:01 0 [Note] Plugin 'wsrep-provider' is disabled.
2026-05-09 12:00:01 0 [Note] Recovering after a crash using tc.log
2026-05-09 12:00:01 0 [Note] Starting table crash recovery...
2026-05-09 12:00:01 0 [Note] Crash table recovery finished.
2026-05-09 12:00:01 0 [Note] WSREP: Recovered position: {UUID}:18350
"""

# mariadb -N -B: SELECT 'wsrep_on', @@global.wsrep_on; SHOW GLOBAL STATUS WHERE Variable_name IN (...)
WSREP_SYNCED = f"""\
wsrep_on\t1
wsrep_cluster_size\t3
wsrep_cluster_state_uuid\t{UUID}
wsrep_cluster_status\tPrimary
wsrep_connected\tON
wsrep_last_committed\t18342
wsrep_local_state\t4
wsrep_local_state_comment\tSynced
wsrep_ready\tON
"""


# --- parsers -------------------------------------------------------------------------------------------------------


def test_grastate_of_a_clean_shutdown_and_of_a_crash():
    assert parse_grastate(GRASTATE_CLEAN) == {"version": "2.1", "uuid": UUID, "seqno": 18342, "safe_to_bootstrap": True}
    assert parse_grastate(GRASTATE_CRASHED) == {"version": "2.1", "uuid": UUID, "seqno": -1, "safe_to_bootstrap": False}


def test_grastate_without_safe_to_bootstrap_line_leaves_it_unknown():
    state = parse_grastate(f"# GALERA saved state\nversion: 2.0\nuuid: {UUID}\nseqno: 7\n")
    assert state["safe_to_bootstrap"] is None
    assert state["seqno"] == 7


def test_set_safe_to_bootstrap_changes_only_that_line():
    assert set_safe_to_bootstrap(GRASTATE_CRASHED) == GRASTATE_CRASHED.replace(
        "safe_to_bootstrap: 0", "safe_to_bootstrap: 1"
    )


def test_set_safe_to_bootstrap_appends_a_missing_line():
    text = f"version: 2.0\nuuid: {UUID}\nseqno: -1"
    assert set_safe_to_bootstrap(text) == text + "\nsafe_to_bootstrap: 1\n"
    assert parse_grastate(set_safe_to_bootstrap(text))["safe_to_bootstrap"] is True


def test_recovered_position_is_read_from_the_log():
    assert parse_recovered_position(RECOVER_LOG) == (UUID, 18350)


def test_recovered_position_takes_the_last_line_and_ignores_a_gtid_suffix():
    log = (
        f"[Note] WSREP: Recovered position: {OTHER_UUID}:3\n"
        f"[Note] WSREP: Recovered position: {UUID.upper()}:42,0-1-42\n"
    )
    assert parse_recovered_position(log) == (UUID, 42)


def test_no_recovered_position_when_the_server_failed():
    log = (
        "2026-05-09 12:00:01 0 [ERROR] InnoDB: Unable to lock ./ibdata1 error: 11\n"
        "2026-05-09 12:00:01 0 [ERROR] Plugin 'InnoDB' registration as a STORAGE ENGINE failed.\n"
        "2026-05-09 12:00:01 0 [ERROR] Aborting\n"
    )
    assert parse_recovered_position(log) is None
    assert parse_recovered_position("") is None


def test_wsrep_status_converts_flags_and_counters():
    status = parse_wsrep_status(WSREP_SYNCED)
    assert status == {
        "wsrep_on": True,
        "wsrep_cluster_size": 3,
        "wsrep_cluster_state_uuid": UUID,
        "wsrep_cluster_status": "Primary",
        "wsrep_connected": True,
        "wsrep_last_committed": 18342,
        "wsrep_local_state": 4,
        "wsrep_local_state_comment": "Synced",
        "wsrep_ready": True,
    }
    assert parse_wsrep_status("wsrep_ready\tOFF\nwsrep_cluster_status\tnon-Primary\n") == {
        "wsrep_ready": False,
        "wsrep_cluster_status": "non-Primary",
    }


def test_server_options_last_value_wins_and_dashes_become_underscores():
    options = parse_server_options(
        "--user=mysql\n--skip-name-resolve\n--wsrep-on=OFF\n--wsrep_on=ON\n"
        "--wsrep_cluster_address=gcomm://10.89.82.11:4567,10.89.82.12:4567,10.89.82.13:4567\n"
    )
    assert options["wsrep_on"] == "ON"
    assert options["skip_name_resolve"] == ""
    assert parse_cluster_address(options["wsrep_cluster_address"]) == ADDRESSES


@pytest.mark.parametrize(
    ("value", "members"),
    [
        ('"gcomm://10.0.0.1,10.0.0.2"', ["10.0.0.1", "10.0.0.2"]),
        ("gcomm://10.0.0.1:4567?pc.wait_prim=no", ["10.0.0.1:4567"]),
        ("gcomm://", []),
        (None, None),
        ("dummy://", None),
    ],
)
def test_cluster_address_members(value, members):
    assert parse_cluster_address(value) == members


# --- the bootstrap decision ------------------------------------------------------------------------------------------


def node(name, seqno=None, *, uuid=UUID, safe=False, grastate_seqno=-1, recovered=True, **extra):
    """A galera status as state=status returns it for a stopped member."""
    status = {
        "node_name": name,
        "service": "inactive",
        "running": False,
        "wsrep_cluster_status": None,
        "wsrep_last_committed": None,
        "grastate": {
            "present": True,
            "version": "2.1",
            "uuid": uuid,
            "seqno": grastate_seqno,
            "safe_to_bootstrap": safe,
        },
        "recovered": {"uuid": uuid, "seqno": seqno} if recovered and seqno is not None else None,
        "recover_error": None,
        "cluster_address": ADDRESSES,
    }
    status.update(extra)
    return status


def clean(name, seqno, safe=False):
    """A member stopped cleanly: grastate.dat holds its position, no recovery ran."""
    return node(name, None, grastate_seqno=seqno, safe=safe, recovered=False)


def test_the_only_safe_to_bootstrap_node_wins():
    decision = decide_bootstrap([clean("ctl1", 100), clean("ctl2", 100), clean("ctl3", 100, safe=True)])
    assert decision["bootstrap_host"] == "ctl3"
    assert "safe_to_bootstrap" in decision["reason"]
    assert decision["seqno"] == 100
    assert decision["uuid"] == UUID


def test_highest_recovered_seqno_wins_when_no_node_is_safe():
    decision = decide_bootstrap([node("ctl1", 18342), node("ctl2", 18350), node("ctl3", 18349)])
    assert decision["bootstrap_host"] == "ctl2"
    assert decision["seqno"] == 18350
    assert [n["position_source"] for n in decision["nodes"]] == ["recovered"] * 3


def test_positions_from_grastate_and_recovery_are_compared_together():
    decision = decide_bootstrap([clean("ctl1", 20), node("ctl2", 25), node("ctl3", 19)])
    assert decision["bootstrap_host"] == "ctl2"


def test_recovered_position_beats_grastate_of_the_same_node():
    status = node("ctl1", 30, grastate_seqno=12)
    assert effective_position(status) == (UUID, 30, "recovered")


def test_two_safe_nodes_fall_back_to_the_highest_seqno():
    decision = decide_bootstrap([clean("ctl1", 10, safe=True), clean("ctl2", 12, safe=True), clean("ctl3", 9)])
    assert decision["bootstrap_host"] == "ctl2"


def test_the_decision_does_not_depend_on_the_order_of_the_nodes():
    statuses = [node("ctl1", 5), node("ctl2", 9), node("ctl3", 7)]
    chosen = {decide_bootstrap(list(order))["bootstrap_host"] for order in itertools.permutations(statuses)}
    assert chosen == {"ctl2"}


def test_a_seqno_tie_without_safe_to_bootstrap_is_refused():
    with pytest.raises(GaleraDecisionError, match=r"ctl1, ctl3 share the highest seqno 9.*bootstrap_host"):
        decide_bootstrap([node("ctl1", 9), node("ctl2", 7), node("ctl3", 9)])


def test_a_named_bootstrap_host_settles_a_tie():
    decision = decide_bootstrap([node("ctl1", 9), node("ctl2", 7), node("ctl3", 9)], bootstrap_host="ctl3")
    assert decision["bootstrap_host"] == "ctl3"
    assert "bootstrap_host" in decision["reason"]


def test_a_named_bootstrap_host_with_older_data_is_refused():
    with pytest.raises(GaleraDecisionError, match=r"ctl2 has seqno 7, lower than the 9.*throw away 2"):
        decide_bootstrap([node("ctl1", 9), node("ctl2", 7), node("ctl3", 9)], bootstrap_host="ctl2")


def test_a_named_bootstrap_host_must_be_a_member():
    with pytest.raises(GaleraDecisionError, match="bootstrap_host ctl9 is not in cluster_status"):
        decide_bootstrap([node("ctl1", 9), node("ctl2", 7)], bootstrap_host="ctl9")


def test_a_named_bootstrap_host_without_state_is_refused():
    empty = node("ctl3", -1, uuid=NO_STATE_UUID)
    with pytest.raises(GaleraDecisionError, match="ctl3 holds no Galera state"):
        decide_bootstrap([node("ctl1", 9), node("ctl2", 7), empty], bootstrap_host="ctl3")


def test_a_running_primary_member_means_the_cluster_is_not_down():
    running = node("ctl2", None, service="active", running=True, wsrep_cluster_status="Primary")
    with pytest.raises(GaleraDecisionError, match=r"not fully down: ctl2 run\(s\) in a Primary component"):
        decide_bootstrap([node("ctl1", 9), running, node("ctl3", 9)])


def test_a_running_primary_member_is_refused_even_with_a_named_host():
    running = node("ctl2", None, service="active", running=True, wsrep_cluster_status="Primary")
    with pytest.raises(GaleraDecisionError, match="not fully down"):
        decide_bootstrap([node("ctl1", 9), running, node("ctl3", 9)], bootstrap_host="ctl1")


def test_a_member_still_running_without_primary_is_refused():
    stuck = node("ctl3", None, service="active", running=True, wsrep_cluster_status="non-Primary")
    with pytest.raises(GaleraDecisionError, match=r"still runs on ctl3 without a Primary.*pc.bootstrap=YES"):
        decide_bootstrap([node("ctl1", 9), node("ctl2", 9), stuck])


def test_a_member_that_is_starting_counts_as_running():
    starting = node("ctl1", None, service="activating", running=True)
    with pytest.raises(GaleraDecisionError, match="still runs on ctl1"):
        decide_bootstrap([starting, node("ctl2", 9), node("ctl3", 8)])


def test_disagreeing_cluster_uuids_are_refused():
    with pytest.raises(GaleraDecisionError, match=f"disagree on the cluster uuid.*ctl3: {OTHER_UUID}"):
        decide_bootstrap([node("ctl1", 9), node("ctl2", 9), node("ctl3", 12, uuid=OTHER_UUID)])


def test_disagreeing_uuids_are_refused_even_with_a_named_host():
    with pytest.raises(GaleraDecisionError, match="disagree on the cluster uuid"):
        decide_bootstrap([node("ctl1", 9), node("ctl2", 9, uuid=OTHER_UUID)], bootstrap_host="ctl1")


def test_an_unknown_position_is_refused():
    crashed = node("ctl2", None, recovered=False)
    with pytest.raises(GaleraDecisionError, match=r"position of ctl2 is unknown.*recover_position: true"):
        decide_bootstrap([node("ctl1", 9), crashed, node("ctl3", 8)])


def test_an_unknown_position_is_refused_even_with_a_named_host():
    crashed = node("ctl2", None, recovered=False, recover_error="InnoDB: Unable to lock ./ibdata1 error: 11")
    with pytest.raises(GaleraDecisionError, match=r"ctl2 \(recovery failed: InnoDB: Unable to lock"):
        decide_bootstrap([node("ctl1", 9), crashed, node("ctl3", 9)], bootstrap_host="ctl1")


def test_a_recovered_uuid_without_seqno_is_unknown():
    with pytest.raises(GaleraDecisionError, match="position of ctl3 is unknown"):
        decide_bootstrap([node("ctl1", 9), node("ctl2", 9), node("ctl3", -1)])


def test_a_member_without_state_is_no_candidate_but_no_obstacle():
    wiped = node("ctl1", -1, uuid=NO_STATE_UUID)
    decision = decide_bootstrap([wiped, node("ctl2", 4), node("ctl3", 3)])
    assert decision["bootstrap_host"] == "ctl2"


def test_no_member_with_state_is_a_new_cluster():
    statuses = [node(name, -1, uuid=NO_STATE_UUID) for name in ("ctl1", "ctl2", "ctl3")]
    with pytest.raises(GaleraDecisionError, match="new cluster, not a stopped one"):
        decide_bootstrap(statuses)


def test_a_configured_member_missing_from_the_status_is_refused():
    with pytest.raises(GaleraDecisionError, match="lists 3 members but cluster_status holds 2"):
        decide_bootstrap([node("ctl1", 9), node("ctl2", 8)])


def test_a_missing_member_is_accepted_when_the_operator_names_the_node():
    decision = decide_bootstrap([node("ctl1", 9), node("ctl2", 8)], bootstrap_host="ctl1")
    assert decision["bootstrap_host"] == "ctl1"
    assert "1 configured member(s) were not asked" in decision["reason"]


def test_safe_to_bootstrap_on_an_older_node_is_a_contradiction():
    with pytest.raises(GaleraDecisionError, match="ctl1 has safe_to_bootstrap: 1 but seqno 5, lower than the 9"):
        decide_bootstrap([clean("ctl1", 5, safe=True), node("ctl2", 9), node("ctl3", 8)])


def test_the_operator_can_settle_a_safe_to_bootstrap_contradiction():
    decision = decide_bootstrap([clean("ctl1", 5, safe=True), node("ctl2", 9), node("ctl3", 8)], bootstrap_host="ctl2")
    assert decision["bootstrap_host"] == "ctl2"


@pytest.mark.parametrize(
    ("statuses", "message"),
    [
        ([], "cluster_status is empty"),
        ([{"service": "inactive"}], "item 0 is not a galera status"),
        (["ctl1"], "item 0 is not a galera status"),
        ([node("ctl1", 9), node("ctl1", 9), node("ctl2", 9)], "names ctl1 more than once"),
    ],
)
def test_malformed_cluster_status_is_refused(statuses, message):
    with pytest.raises(GaleraDecisionError, match=message):
        decide_bootstrap(statuses)
