# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.neutron_plan_problems; tests/test_prechecks.py runs it through the prechecks playbook."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.stackwright.cloud.plugins.filter.prechecks import FilterModule

neutron_plan_problems = FilterModule().filters()["neutron_plan_problems"]

PUBLIC = {"name": "public", "physical_network": "physnet1", "external": True}
DEMO = {"name": "demo-net", "project": "demo", "router": "demo-router", "external_network": "public"}
POOL = {"name": "pool", "prefixes": ["172.30.0.0/16"], "is_default": True}


def test_a_sound_plan_has_no_problem():
    assert neutron_plan_problems([PUBLIC], [DEMO], [POOL], ["demo"], ["physnet1"]) == []
    assert neutron_plan_problems(None) == []


def test_every_mistake_is_named():
    providers = [
        dict(PUBLIC, physical_network="physnet9"),
        {"name": "internal", "physical_network": "physnet1", "is_default": True},
        dict(PUBLIC, name="public2", is_default=True),
    ]
    self_service = [dict(DEMO, project="nobody"), dict(DEMO, name="lost", external_network="internal")]
    pools = [POOL, dict(POOL, name="second"), {"name": "bare"}, {"prefixes": ["10.0.0.0/8"]}]
    assert neutron_plan_problems(providers, self_service, pools, ["demo"], ["physnet1"]) == [
        "provider network 'public' uses a physical network that no network host maps to a bridge",
        "self-service network 'demo-net' is in a project that is neither admin nor in neutron_projects",
        "the router of self-service network 'lost' needs an external network of neutron_provider_networks",
        "provider network 'internal' is_default but not external: only an external network can be the default",
        "more than one provider network is_default: internal, public2",
        "more than one subnet pool is_default: pool, second",
        "subnet pool 'bare' needs its prefixes (a list of CIDRs)",
        "every subnet pool needs a name",
    ]


def test_admin_is_always_a_project_and_a_network_without_router_needs_no_external():
    lonely = {"name": "admin-net", "project": "admin"}
    assert neutron_plan_problems([PUBLIC], [lonely], [], [], ["physnet1"]) == []


def test_a_list_that_is_not_of_mappings_is_refused():
    with pytest.raises(AnsibleFilterError, match="neutron_provider_networks must be a list of mappings"):
        neutron_plan_problems("public")
