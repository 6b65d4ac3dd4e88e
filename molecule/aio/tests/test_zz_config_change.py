"""A nova.conf change restarts nova's services and no other one, and the running API serves the new value. Runs last:
it restarts services that the idempotence check compares."""

import json
from pathlib import Path

NOVA_PLAYBOOK = Path(__file__).resolve().parents[3] / "playbooks" / "nova.yml"
NOVA_COMPONENTS = ("api", "metadata", "conductor", "scheduler", "novncproxy", "compute")
OTHER_UNITS = ("keystone-api", "glance-api", "placement-api", "neutron-api", "mariadb", "rabbitmq-server",
               "libvirtd", "ovn-controller", "ovs-vswitchd")  # fmt: skip


def main_pids(host, units):
    out = host.check_output("systemctl show --property=MainPID --value " + " ".join(units))
    return dict(zip(units, out.split(), strict=True))


def default_instance_quota(conn):
    return conn.compute.get(f"/os-quota-sets/{conn.current_project_id}/defaults").json()["quota_set"]["instances"]


def test_a_nova_setting_restarts_only_nova(remote, inventory, playbook_runner, conn):
    name = inventory["groups"]["controller"][0]
    host = remote(name)
    nova_units = sorted(
        set(host.check_output("systemctl list-units --plain --no-legend --type=service 'nova-*'").split())
        & {f"nova-{component}.service" for component in NOVA_COMPONENTS}
    )
    assert "nova-api.service" in nova_units
    before = main_pids(host, [*nova_units, *OTHER_UNITS])
    assert default_instance_quota(conn) == 10

    override = json.dumps({"nova_nova_conf_overrides": {"quota": {"instances": 17}}})
    run, _ = playbook_runner(NOVA_PLAYBOOK, "-e", override)
    try:
        assert run.returncode == 0, run.stdout[-3000:]
        after = main_pids(host, [*nova_units, *OTHER_UNITS])
        for unit in nova_units:
            assert after[unit] != before[unit], f"{unit} on {name} kept running with the old nova.conf"
        for unit in OTHER_UNITS:
            assert after[unit] == before[unit], f"{unit} on {name} was restarted by a nova.conf change"
        assert default_instance_quota(conn) == 17
    finally:
        # Back to the inventory's settings, so the lab ends converged.
        run, _ = playbook_runner(NOVA_PLAYBOOK)
    assert run.returncode == 0, run.stdout[-3000:]
    assert default_instance_quota(conn) == 10
