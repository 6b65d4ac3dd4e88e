# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.volume_service against a fake openstacksdk connection whose block_storage proxy answers as
cinder's os-services does: a plain disable keeps the reason, an enable keeps it too, freeze disables the backend with
the reason 'frozen' and thaw enables it and clears the reason."""

from types import SimpleNamespace

import openstack
import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import volume_service
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module
from openstack.block_storage.v3.service import Service

# Every Resource openstacksdk 4.x builds warns so; the fake builds them as the SDK does.
pytestmark = pytest.mark.filterwarnings("ignore:The _compute_attributes method is deprecated")

UPDATED = "2026-12-02T08:14:07.000000"


def record(binary, host, status="enabled", state="up", disabled_reason=None, frozen=None):
    entry = {
        "binary": binary, "host": host, "zone": "nova", "status": status, "state": state,
        "disabled_reason": disabled_reason, "updated_at": UPDATED, "cluster": None,
    }  # fmt: skip
    if binary == "cinder-volume":
        entry.update(frozen=bool(frozen), replication_status="disabled", active_backend_id=None)
    return entry


class FakeBlockStorage:
    """The block_storage proxy of a connection: reads answer from the records, writes are recorded and applied."""

    def __init__(self):
        self.records = {
            (r["binary"], r["host"]): r
            for r in (
                record("cinder-scheduler", "ctl1"),
                record("cinder-backup", "ctl1"),
                record("cinder-backup", "ctl2", status="disabled", disabled_reason="maintenance"),
                record("cinder-volume", "rbd@rbd"),
            )
        }
        self.refuse = None  # the exception cinder answers a write with
        # Cinder 29.0.0 answers os-services/enable and os-services/disable with success and saves nothing.
        self.plain_status_saved = True
        self.reads = []
        self.writes = []

    def services(self, **query):
        assert not query, "the module lists every service once"
        self.reads.append("services")
        return (Service(**r) for r in list(self.records.values()))

    def current(self, service):
        assert isinstance(service, Service)
        if self.refuse:
            raise self.refuse
        return self.records[(service.binary, service.host)]

    def enable_service(self, service):
        self.writes.append(("enable", service.binary, service.host))
        current = self.current(service)
        if self.plain_status_saved:
            current["status"] = "enabled"  # cinder keeps the reason
        return Service(**{**current, "status": "enabled"})

    def disable_service(self, service, *, reason=None):
        self.writes.append(("disable", service.binary, service.host, reason))
        current = self.current(service)
        if reason:  # disable-log-reason
            current.update(status="disabled", disabled_reason=reason)
        elif self.plain_status_saved:  # a plain disable keeps the reason
            current["status"] = "disabled"
        return Service(**{**current, "status": "disabled"})

    def freeze_service(self, service):
        self.writes.append(("freeze", service.binary, service.host))
        current = self.current(service)
        current.update(frozen=True, status="disabled", disabled_reason="frozen")
        return Service(**current)

    def thaw_service(self, service):
        self.writes.append(("thaw", service.binary, service.host))
        current = self.current(service)
        current.update(frozen=False, status="enabled", disabled_reason="")
        return Service(**current)


@pytest.fixture
def cinder(monkeypatch):
    block_storage = FakeBlockStorage()
    conn = SimpleNamespace(block_storage=block_storage, connect_kwargs=None)

    def connect(**kwargs):
        conn.connect_kwargs = kwargs
        return conn

    patch_module(monkeypatch, block_storage)
    monkeypatch.setattr(openstack, "connect", connect)
    block_storage.conn = conn
    return block_storage


def run_module(**args):
    with patch_module_args({"cloud": "admin", **args}), pytest.raises((Exited, Failed)) as caught:
        volume_service.main()
    return caught.value


def succeed(**args):
    outcome = run_module(**args)
    assert isinstance(outcome, Exited), outcome.result
    return outcome.result


def refuse(cinder, **args):
    outcome = run_module(**args)
    assert isinstance(outcome, Failed), outcome.result
    assert cinder.writes == [], "a refusal writes nothing"
    return outcome.result["msg"]


# Enable and disable


def test_already_enabled_is_unchanged(cinder):
    result = succeed(binary="cinder-backup", host="ctl1")
    assert result["changed"] is False
    assert cinder.writes == []
    assert cinder.conn.connect_kwargs["cloud"] == "admin"
    assert result["service"] == {
        "binary": "cinder-backup", "host": "ctl1", "zone": "nova", "status": "enabled", "state": "up",
        "disabled_reason": None, "frozen": None, "cluster": None, "updated_at": UPDATED,
    }  # fmt: skip
    assert result["msg"] == "cinder-backup on ctl1: already enabled"


def test_disable_with_a_reason(cinder):
    result = succeed(binary="cinder-backup", host="ctl1", state="disabled", disabled_reason="kernel update")
    assert result["changed"] is True
    assert cinder.writes == [("disable", "cinder-backup", "ctl1", "kernel update")]
    assert result["service"]["status"] == "disabled"
    assert result["service"]["disabled_reason"] == "kernel update"
    assert result["msg"] == "cinder-backup on ctl1: disabled with reason 'kernel update'"
    # The result is cinder's listing after the write.
    assert cinder.reads == ["services", "services"]


def test_disable_without_a_reason(cinder):
    result = succeed(binary="cinder-scheduler", host="ctl1", state="disabled")
    assert result["changed"] is True
    assert cinder.writes == [("disable", "cinder-scheduler", "ctl1", None)]


def test_disable_again_with_the_same_reason_is_unchanged(cinder):
    result = succeed(binary="cinder-backup", host="ctl2", state="disabled", disabled_reason="maintenance")
    assert result["changed"] is False
    assert cinder.writes == []


def test_disable_without_a_reason_keeps_the_current_one(cinder):
    result = succeed(binary="cinder-backup", host="ctl2", state="disabled")
    assert result["changed"] is False
    assert result["service"]["disabled_reason"] == "maintenance"


def test_a_new_reason_on_a_disabled_service(cinder):
    result = succeed(binary="cinder-backup", host="ctl2", state="disabled", disabled_reason="disk replacement")
    assert result["changed"] is True
    assert cinder.writes == [("disable", "cinder-backup", "ctl2", "disk replacement")]
    assert result["service"]["disabled_reason"] == "disk replacement"
    assert result["msg"] == "cinder-backup on ctl2: reason set to 'disk replacement'"


def test_enable_a_disabled_service(cinder):
    result = succeed(binary="cinder-backup", host="ctl2", state="enabled")
    assert result["changed"] is True
    assert cinder.writes == [("enable", "cinder-backup", "ctl2")]
    assert result["service"]["status"] == "enabled"
    # Cinder keeps the last reason; the module reports what cinder lists.
    assert result["service"]["disabled_reason"] == "maintenance"


# Check mode


def test_check_mode_reports_the_change_and_writes_nothing(cinder):
    result = succeed(
        binary="cinder-backup", host="ctl1", state="disabled", disabled_reason="kernel update", _ansible_check_mode=True
    )
    assert result["changed"] is True
    assert cinder.writes == []
    assert result["service"]["status"] == "disabled"
    assert result["service"]["disabled_reason"] == "kernel update"
    assert result["msg"] == "cinder-backup on ctl1: would disable with reason 'kernel update'"
    assert cinder.records[("cinder-backup", "ctl1")]["status"] == "enabled"


def test_check_mode_of_a_reason_update(cinder):
    result = succeed(
        binary="cinder-backup", host="ctl2", state="disabled", disabled_reason="new", _ansible_check_mode=True
    )
    assert result["changed"] is True
    assert result["msg"] == "cinder-backup on ctl2: would set the reason to 'new'"
    assert cinder.writes == []


def test_check_mode_in_the_wanted_state_is_unchanged(cinder):
    result = succeed(binary="cinder-backup", host="ctl1", _ansible_check_mode=True)
    assert result["changed"] is False
    assert cinder.writes == []


# Misses and bad options


def test_unknown_host_fails_and_names_the_known_services(cinder):
    msg = refuse(cinder, binary="cinder-backup", host="ctl9", state="disabled")
    assert "no cinder-backup service on host 'ctl9'" in msg
    assert "cinder-backup on ctl1, cinder-backup on ctl2, cinder-scheduler on ctl1, cinder-volume on rbd@rbd" in msg


def test_a_volume_host_without_backend_gets_a_hint(cinder):
    msg = refuse(cinder, binary="cinder-volume", host="ctl1")
    assert "host@backend" in msg
    assert "rbd@rbd" in msg


def test_a_backend_host_for_another_binary_gets_a_hint(cinder):
    assert "Only cinder-volume hosts carry @backend" in refuse(cinder, binary="cinder-backup", host="rbd@rbd")


def test_unknown_binary_is_refused_by_the_argument_spec(cinder):
    assert "cinder-api" in refuse(cinder, binary="cinder-api", host="ctl1")


def test_a_reason_with_state_enabled_is_refused(cinder):
    assert "state=disabled only" in refuse(cinder, binary="cinder-backup", host="ctl2", disabled_reason="x")


@pytest.mark.parametrize("reason", ["", "   ", "x" * 256])
def test_a_reason_cinder_would_refuse_is_refused(cinder, reason):
    msg = refuse(cinder, binary="cinder-backup", host="ctl2", state="disabled", disabled_reason=reason)
    assert "1 to 255 characters" in msg


def test_cinder_refusing_a_write_is_reported(cinder):
    cinder.refuse = openstack.exceptions.ForbiddenException(message="Policy doesn't allow volume:update_service")
    outcome = run_module(binary="cinder-backup", host="ctl1", state="disabled")
    assert isinstance(outcome, Failed)
    assert "cinder refused to disable cinder-backup on ctl1" in outcome.result["msg"]
    assert "Policy" in outcome.result["msg"]
    assert outcome.result["changed"] is False


# Freeze and thaw


def test_freeze_disables_with_cinders_reason(cinder):
    result = succeed(binary="cinder-volume", host="rbd@rbd", state="disabled", frozen=True)
    assert result["changed"] is True
    assert cinder.writes == [("freeze", "cinder-volume", "rbd@rbd")]
    assert result["service"]["frozen"] is True
    assert result["service"]["status"] == "disabled"
    assert result["service"]["disabled_reason"] == "frozen"
    assert result["msg"] == "cinder-volume on rbd@rbd: frozen"


def test_freeze_with_a_reason_sets_it_after_the_freeze(cinder):
    result = succeed(binary="cinder-volume", host="rbd@rbd", state="disabled", frozen=True, disabled_reason="ceph")
    assert cinder.writes == [("freeze", "cinder-volume", "rbd@rbd"), ("disable", "cinder-volume", "rbd@rbd", "ceph")]
    assert result["service"]["disabled_reason"] == "ceph"
    assert result["msg"] == "cinder-volume on rbd@rbd: frozen, reason set to 'ceph'"


def test_freeze_of_a_frozen_backend_is_unchanged(cinder):
    cinder.records[("cinder-volume", "rbd@rbd")].update(frozen=True, status="disabled", disabled_reason="frozen")
    result = succeed(binary="cinder-volume", host="rbd@rbd", state="disabled", frozen=True)
    assert result["changed"] is False
    assert cinder.writes == []


def test_freeze_needs_state_disabled(cinder):
    assert "needs state: disabled" in refuse(cinder, binary="cinder-volume", host="rbd@rbd", frozen=True)


def test_only_cinder_volume_freezes(cinder):
    msg = refuse(cinder, binary="cinder-backup", host="ctl1", state="disabled", frozen=True)
    assert "only cinder-volume" in msg


def test_freeze_of_a_down_backend_is_refused(cinder):
    cinder.records[("cinder-volume", "rbd@rbd")]["state"] = "down"
    msg = refuse(cinder, binary="cinder-volume", host="rbd@rbd", state="disabled", frozen=True)
    assert "reports it down" in msg
    assert "systemctl start cinder-volume" in msg


def test_thaw_enables(cinder):
    cinder.records[("cinder-volume", "rbd@rbd")].update(frozen=True, status="disabled", disabled_reason="frozen")
    result = succeed(binary="cinder-volume", host="rbd@rbd", frozen=False)
    assert result["changed"] is True
    assert cinder.writes == [("thaw", "cinder-volume", "rbd@rbd")]
    assert result["service"]["frozen"] is False
    assert result["service"]["status"] == "enabled"


def test_thaw_and_stay_disabled(cinder):
    cinder.records[("cinder-volume", "rbd@rbd")].update(frozen=True, status="disabled", disabled_reason="frozen")
    result = succeed(binary="cinder-volume", host="rbd@rbd", state="disabled", frozen=False, disabled_reason="drain")
    assert cinder.writes == [("thaw", "cinder-volume", "rbd@rbd"), ("disable", "cinder-volume", "rbd@rbd", "drain")]
    assert result["service"]["status"] == "disabled"
    assert result["service"]["frozen"] is False


def test_enabling_a_frozen_backend_without_thawing_is_refused(cinder):
    cinder.records[("cinder-volume", "rbd@rbd")].update(frozen=True, status="disabled", disabled_reason="frozen")
    assert "frozen: false" in refuse(cinder, binary="cinder-volume", host="rbd@rbd")


def test_freeze_in_check_mode(cinder):
    result = succeed(binary="cinder-volume", host="rbd@rbd", state="disabled", frozen=True, _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["msg"] == "cinder-volume on rbd@rbd: would freeze"
    assert result["service"]["frozen"] is True
    assert result["service"]["status"] == "disabled"
    assert cinder.writes == []


# Absent


def test_absent_without_a_record_is_unchanged(cinder):
    result = succeed(binary="cinder-backup", host="ctl3", state="absent")
    assert result["changed"] is False
    assert result["service"] is None
    assert cinder.writes == []


def test_absent_of_a_running_service_says_to_stop_it_first(cinder):
    msg = refuse(cinder, binary="cinder-backup", host="ctl1", state="absent")
    assert "no API to delete" in msg
    assert "still reports up" in msg
    assert "systemctl stop cinder-backup on ctl1" in msg
    assert "cinder-manage service remove cinder-backup ctl1" in msg


def test_absent_of_a_down_service_gives_the_cinder_manage_command(cinder):
    cinder.records[("cinder-volume", "rbd@rbd")]["state"] = "down"
    msg = refuse(cinder, binary="cinder-volume", host="rbd@rbd", state="absent", _ansible_check_mode=True)
    assert "still reports up" not in msg
    assert "cinder-manage service remove cinder-volume rbd@rbd" in msg


def test_absent_takes_no_status_options(cinder):
    assert "drop them with absent" in refuse(cinder, binary="cinder-backup", host="ctl3", state="absent", frozen=False)


# Cinder answering success for a change it did not save


def test_an_enable_cinder_did_not_save_fails(cinder):
    cinder.plain_status_saved = False
    outcome = run_module(binary="cinder-backup", host="ctl2")
    assert isinstance(outcome, Failed), outcome.result
    msg = outcome.result["msg"]
    assert "lists it with status 'disabled' instead of 'enabled'" in msg
    assert "Cinder 29.0.0" in msg
    assert "set disabled to 0 and disabled_reason to NULL" in msg
    assert "binary 'cinder-backup', host 'ctl2'" in msg
    assert outcome.result["changed"] is False
    assert outcome.result["service"]["status"] == "disabled"


def test_a_plain_disable_cinder_did_not_save_fails_and_points_to_a_reason(cinder):
    cinder.plain_status_saved = False
    outcome = run_module(binary="cinder-backup", host="ctl1", state="disabled")
    assert isinstance(outcome, Failed), outcome.result
    assert "give a disabled_reason" in outcome.result["msg"]
    assert outcome.result["changed"] is False


def test_a_disable_with_a_reason_works_where_the_plain_one_does_not(cinder):
    cinder.plain_status_saved = False
    result = succeed(binary="cinder-backup", host="ctl1", state="disabled", disabled_reason="kernel update")
    assert result["changed"] is True
    assert result["service"]["status"] == "disabled"


def test_thaw_enables_where_the_plain_enable_does_not(cinder):
    cinder.plain_status_saved = False
    cinder.records[("cinder-volume", "rbd@rbd")].update(frozen=True, status="disabled", disabled_reason="frozen")
    result = succeed(binary="cinder-volume", host="rbd@rbd", frozen=False)
    assert result["service"]["status"] == "enabled"
    assert cinder.writes == [("thaw", "cinder-volume", "rbd@rbd")]
