# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""module_utils/nova_services.py: finding one nova service among those nova lists, and the microversion check."""

from types import SimpleNamespace

import pytest
from ansible_collections.stackwright.cloud.plugins.module_utils.nova_services import (
    SERVICE_ID_MICROVERSION,
    ServiceLookupError,
    find_service,
    known_hosts,
    service_id_microversion_problem,
    service_record,
)

HINT = "delete the stale one"


def service(host, binary="nova-compute", status="enabled", service_id=None):
    return SimpleNamespace(
        id=service_id or f"id-{host}", host=host, binary=binary, status=status, state="up", is_forced_down=False,
        disabled_reason=None, updated_at="2026-12-07T00:00:00.000000",
    )  # fmt: skip


def test_finds_the_service_of_the_host_and_binary():
    services = [service("cmp1"), service("cmp2"), service("cmp2", binary="nova-conductor")]
    assert find_service(services, "cmp2", "nova-compute", HINT) is services[1]


def test_a_host_without_the_service_is_none():
    assert find_service([service("cmp1")], "cmp9", "nova-compute", HINT) is None
    assert find_service([service("ctl1", binary="nova-conductor")], "ctl1", "nova-compute", HINT) is None


def test_two_records_of_a_host_name_both_ids_and_the_way_out():
    services = [service("cmp1", service_id="a"), service("cmp1", service_id="b")]
    duplicates = r"2 nova-compute services on host 'cmp1' \(a, b\).*delete the stale one"
    with pytest.raises(ServiceLookupError, match=duplicates):
        find_service(services, "cmp1", "nova-compute", HINT)


def test_a_cell_nova_cannot_reach_is_refused():
    with pytest.raises(ServiceLookupError, match="cannot reach the cell of host 'cmp1'"):
        find_service([service("cmp1", status="UNKNOWN")], "cmp1", "nova-compute", HINT)


def test_known_hosts_are_sorted_once_each():
    assert known_hosts([service("cmp2"), service("cmp1"), service("cmp2", binary="nova-conductor")]) == "cmp1, cmp2"
    assert known_hosts([]) == "none"


def test_the_record_carries_every_returned_field():
    record = service_record(service("cmp1"))
    assert record == {
        "id": "id-cmp1", "host": "cmp1", "binary": "nova-compute", "status": "enabled", "state": "up",
        "forced_down": False, "disabled_reason": None, "updated_at": "2026-12-07T00:00:00.000000",
    }  # fmt: skip


@pytest.mark.parametrize(("supported", "problem"), [(True, False), (False, True)])
def test_the_microversion_problem_names_the_version(supported, problem):
    asked = []

    def supports_microversion(adapter, version):
        asked.append((adapter, version))
        return supported

    sdk = SimpleNamespace(utils=SimpleNamespace(supports_microversion=supports_microversion))
    answer = service_id_microversion_problem(sdk, "compute")
    assert asked == [("compute", SERVICE_ID_MICROVERSION)]
    assert bool(answer) is problem
    if problem:
        assert SERVICE_ID_MICROVERSION in answer and "Nothing was changed" in answer
