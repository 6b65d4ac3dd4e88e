"""Draining a compute host (`playbooks/drain-compute.yml`, `make day2 INVENTORY=...`): two servers booted on the first
compute host move by live migration to another one and stay ACTIVE, a second run changes nothing, and the host is put
back into service. Needs two compute hosts (the multinode lab); the host is enabled again and the servers are deleted
whatever happens."""

import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "playbooks" / "drain-compute.yml"
GUEST_IMAGE = "stackwright-guest"
FLAVOR = "m1.micro"


def failed_run(run):
    return f"exit {run.returncode}\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"


def nova_name(inventory, host):
    """Nova's name of an inventory host (the nova role's nova_host, by default the inventory name)."""
    return inventory["hostvars"][host].get("nova_host", host)


def compute_service(conn, host):
    return next(service for service in conn.compute.services(binary="nova-compute") if service.host == host)


@pytest.fixture(scope="module")
def source(inventory):
    computes = inventory["groups"]["compute"]
    if len(computes) < 2:
        pytest.skip(f"draining a compute host needs another one to take its instances; this inventory has "
                    f"{len(computes)} compute host(s) (the multinode lab has two)")  # fmt: skip
    return computes[0]


@pytest.fixture(scope="module")
def drained_servers(conn, inventory, source, playbook_runner, delete_servers):
    """Two ACTIVE servers on the source host, without a port. Afterwards: deleted, and the source host enabled."""
    # Another test's servers may be unable to move (an anti-affinity group with a member on the other host).
    foreign = [
        server.name for server in conn.compute.servers(all_projects=True, compute_host=nova_name(inventory, source))
    ]
    if foreign:
        pytest.skip(
            f"{source} holds servers this test did not create ({', '.join(foreign)}); the drain would move them"
        )
    image = conn.image.find_image(GUEST_IMAGE, ignore_missing=False)
    flavor = conn.compute.find_flavor(FLAVOR, ignore_missing=False)
    tag = uuid.uuid4().hex[:6]
    servers = []
    try:
        for index in range(2):
            servers.append(conn.compute.create_server(
                name=f"drain-{index}-{tag}", image_id=image.id, flavor_id=flavor.id, networks="none",
                availability_zone=f"nova:{nova_name(inventory, source)}",
            ))  # fmt: skip
        servers = [
            conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=3, wait=600)
            for server in servers
        ]
        assert {server.compute_host for server in servers} == {nova_name(inventory, source)}
        yield servers
    finally:
        run, _ = playbook_runner(PLAYBOOK, "-e", f"host={source}", "-e", "enable=true")
        delete_servers(conn, servers)
        assert run.returncode == 0, failed_run(run)


def test_check_mode_reports_the_moves_and_changes_nothing(conn, inventory, source, drained_servers, playbook_runner):
    run, _ = playbook_runner(PLAYBOOK, "-e", f"host={source}", "--check")
    assert run.returncode == 0, failed_run(run)
    out = " ".join(run.stdout.split())
    for server in drained_servers:
        assert f"Would move {server.name} ({server.id}), live" in out, out[-3000:]
    assert compute_service(conn, nova_name(inventory, source)).status == "enabled"
    assert {conn.compute.get_server(server.id).compute_host for server in drained_servers} == {
        nova_name(inventory, source)
    }


def test_a_drain_live_migrates_every_server_and_disables_the_host(conn, inventory, source, drained_servers,
                                                                  playbook_runner):  # fmt: skip
    run, recap = playbook_runner(PLAYBOOK, "-e", f"host={source}")
    assert run.returncode == 0, failed_run(run)
    assert recap["localhost"] > 0
    for server in drained_servers:
        server = conn.compute.get_server(server.id)
        assert server.status == "ACTIVE", server
        assert server.compute_host != nova_name(inventory, source), server
        assert server.compute_host in {nova_name(inventory, host) for host in inventory["groups"]["compute"]}
    service = compute_service(conn, nova_name(inventory, source))
    assert service.status == "disabled"
    assert service.disabled_reason == "drained by stackwright.cloud.compute_host"
    out = " ".join(run.stdout.split())
    assert "moved 2 instance(s) (2 live)" in out, out[-3000:]


def test_a_second_drain_changes_nothing(source, drained_servers, playbook_runner):
    run, recap = playbook_runner(PLAYBOOK, "-e", f"host={source}")
    assert run.returncode == 0, failed_run(run)
    assert recap["localhost"] == 0, run.stdout[-3000:]
    assert "already disabled and empty" in run.stdout


def test_enable_puts_the_host_back_into_service(conn, inventory, source, drained_servers, playbook_runner):
    run, recap = playbook_runner(PLAYBOOK, "-e", f"host={source}", "-e", "enable=true")
    assert run.returncode == 0, failed_run(run)
    assert recap["localhost"] == 1
    service = compute_service(conn, nova_name(inventory, source))
    assert service.status == "enabled"
    assert not service.disabled_reason
    run, recap = playbook_runner(PLAYBOOK, "-e", f"host={source}", "-e", "enable=true")
    assert run.returncode == 0 and recap["localhost"] == 0, failed_run(run)
