# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.neutron_plan_problems and ceph_plan_problems; tests/test_prechecks.py runs them through the
prechecks playbook."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.stackwright.cloud.plugins.filter.prechecks import FilterModule

FILTERS = FilterModule().filters()
neutron_plan_problems = FILTERS["neutron_plan_problems"]
ceph_plan_problems = FILTERS["ceph_plan_problems"]

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


DISK = {"path": "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"}


@pytest.mark.parametrize(
    ("args", "problems"),
    [
        (("deploy", ["mon1"], {"sto1": [DISK], "sto2": [{"path": "/srv/osd.img", "size": "10G"}]}), []),
        (("none",), []),
        ((None,), []),
        (("external", [], {}, ["192.0.2.61"]), []),
        (("external",),
         ["ceph_mode external needs ceph_external_mon_hosts, the monitor addresses of the existing cluster"]),
        (("bluestore",), ["ceph_mode is 'bluestore'; use deploy, external or none"]),
        (("deploy", ["mon1", "mon2"], {"sto1": [DISK]}),
         ["ceph_mode deploy needs an odd number of hosts (1, 3 or 5) in the ceph_mon group; it has 2"]),
        (("deploy", [], {"sto1": [DISK]}),
         ["ceph_mode deploy needs an odd number of hosts (1, 3 or 5) in the ceph_mon group; it has 0"]),
        (("deploy", ["mon1"], {"sto1": "/dev/sdb"}), ["ceph_osds must be a list of {path, size} on host(s) sto1"]),
        (("deploy", ["mon1"], {"sto1": [{"size": "10G"}, {"path": "sdb"}]}),
         ['every entry of ceph_osds needs an absolute path (a disk, or a file with a size); got '
          '[{"size": "10G"}, {"path": "sdb"}]']),
        (("deploy", ["mon1"], {"sto1": None}),
         ["ceph_mode deploy needs at least one entry in ceph_osds on the storage hosts"]),
        (("deploy", ["mon1"], {"sto1": [DISK], "sto2": None, "sto3": []}),
         ["ceph_mode deploy runs OSDs on every storage host (the pools keep their replicas on separate hosts), but "
          "host(s) sto2, sto3 have no ceph_osds"]),
    ],
)  # fmt: skip
def test_ceph_plan_problems(args, problems):
    assert ceph_plan_problems(*args) == problems
