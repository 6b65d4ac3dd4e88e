"""Evacuating a dead compute host (`playbooks/evacuate-compute.yml`, `make day2 INVENTORY=...`): a server on the first
compute host, whose nova-compute and instances are then stopped as a failure would, is rebuilt on another host (from
its image: its root disk was local to the dead host) and runs there; the playbook refuses without the operator's word
that the host is fenced; a second run changes nothing; after the "repair" the host deletes its stale copy and is put
back into service. Needs two compute hosts (the multinode lab). nova-compute is started, the host enabled and the
server deleted whatever happens."""

import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "playbooks" / "evacuate-compute.yml"
GUEST_IMAGE = "stackwright-guest"
FLAVOR = "m1.micro"
VIRSH = "virsh --connect qemu:///system"


def failed_run(run):
    return f"exit {run.returncode}\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"


def nova_name(inventory, host):
    """Nova's name of an inventory host (the nova role's nova_host, by default the inventory name)."""
    return inventory["hostvars"][host].get("nova_host", host)


def compute_service(conn, host):
    return next(service for service in conn.compute.services(binary="nova-compute") if service.host == host)


def domains(remote, host):
    """UUIDs of the libvirt domains defined on host, running or not."""
    return set(remote(host).check_output(f"{VIRSH} list --all --uuid").split())


@pytest.fixture(scope="module")
def dead_host(inventory):
    computes = inventory["groups"]["compute"]
    if len(computes) < 2:
        pytest.skip(f"evacuating a compute host needs another one to take its instances; this inventory has "
                    f"{len(computes)} compute host(s) (the multinode lab has two)")  # fmt: skip
    return computes[0]


@pytest.fixture(scope="module")
def server(conn, inventory, dead_host, playbook_runner, remote, poll, delete_servers):
    """An ACTIVE server on dead_host. Afterwards: deleted, nova-compute running there, the host back in service."""
    host = nova_name(inventory, dead_host)
    foreign = [server.name for server in conn.compute.servers(all_projects=True, compute_host=host)]
    if foreign:
        pytest.skip(f"{dead_host} holds servers this test did not create ({', '.join(foreign)}); the test would "
                    "evacuate them")  # fmt: skip
    image = conn.image.find_image(GUEST_IMAGE, ignore_missing=False)
    flavor = conn.compute.find_flavor(FLAVOR, ignore_missing=False)
    created = None
    try:
        created = conn.compute.create_server(
            name=f"evacuate-{uuid.uuid4().hex[:6]}", image_id=image.id, flavor_id=flavor.id, networks="none",
            availability_zone=f"nova:{host}",
        )  # fmt: skip
        created = conn.compute.wait_for_server(created, status="ACTIVE", failures=["ERROR"], interval=3, wait=600)
        assert created.compute_host == host
        yield created
    finally:
        remote(dead_host).run("systemctl start nova-compute")
        run, _ = playbook_runner(PLAYBOOK, "-e", f"host={dead_host}", "-e", "recovered=true")
        if created is not None:
            delete_servers(conn, [created])
        assert run.returncode == 0, failed_run(run)
        assert poll(lambda: compute_service(conn, host).state == "up", attempts=60, delay=3)


def test_an_unfenced_host_is_refused_and_nothing_changes(conn, inventory, dead_host, server, playbook_runner):
    run, _ = playbook_runner(PLAYBOOK, "-e", f"host={dead_host}")
    assert run.returncode != 0, run.stdout[-3000:]
    out = " ".join(run.stdout.split())
    assert f"Fence {dead_host} first" in out and "Nothing was changed" in out, out[-3000:]
    service = compute_service(conn, nova_name(inventory, dead_host))
    assert (service.status, service.is_forced_down) == ("enabled", False)


def test_a_fenced_host_is_evacuated_and_its_server_runs_elsewhere(conn, inventory, dead_host, server, remote,
                                                                 playbook_runner):  # fmt: skip
    # The failure: nova-compute gone and the instance no longer running, as on a host that lost power.
    remote(dead_host).check_output("systemctl stop nova-compute")
    for domain in remote(dead_host).check_output(f"{VIRSH} list --uuid").split():
        remote(dead_host).check_output(f"{VIRSH} destroy {domain}")

    run, recap = playbook_runner(PLAYBOOK, "-e", f"host={dead_host}", "-e", "fenced=true")
    assert run.returncode == 0, failed_run(run)
    assert recap["localhost"] > 0
    out = " ".join(run.stdout.split())
    assert f"Moved {server.name} ({server.id}), evacuate" in out, out[-3000:]
    moved = conn.compute.get_server(server.id)
    assert moved.compute_host != nova_name(inventory, dead_host), moved
    assert moved.compute_host in {nova_name(inventory, host) for host in inventory["groups"]["compute"]}
    # It ran before the failure, so it runs again (nova 2.95+ leaves it stopped; the playbook starts it).
    assert moved.status == "ACTIVE", moved
    service = compute_service(conn, nova_name(inventory, dead_host))
    assert (service.status, service.is_forced_down) == ("disabled", True)
    assert service.disabled_reason == "evacuated by stackwright.cloud.compute_host"


def test_a_second_evacuation_changes_nothing(dead_host, server, playbook_runner):
    run, recap = playbook_runner(PLAYBOOK, "-e", f"host={dead_host}", "-e", "fenced=true")
    assert run.returncode == 0, failed_run(run)
    assert recap["localhost"] == 0, run.stdout[-3000:]


def test_the_repaired_host_drops_its_stale_copy_and_returns_to_service(conn, inventory, dead_host, server, remote,
                                                                      playbook_runner, poll):  # fmt: skip
    assert server.id in domains(remote, dead_host), "the stopped copy should still be defined before the repair"
    remote(dead_host).check_output("systemctl start nova-compute")
    # nova-compute deletes the local copies of instances evacuated away while it was gone, when it starts.
    assert poll(lambda: server.id not in domains(remote, dead_host), attempts=60, delay=3)

    run, recap = playbook_runner(PLAYBOOK, "-e", f"host={dead_host}", "-e", "recovered=true")
    assert run.returncode == 0, failed_run(run)
    assert recap["localhost"] == 2, run.stdout[-3000:]
    host = nova_name(inventory, dead_host)
    assert poll(lambda: compute_service(conn, host).state == "up", attempts=60, delay=3)
    service = compute_service(conn, host)
    assert (service.status, service.is_forced_down, service.disabled_reason) == ("enabled", False, None)
    assert conn.compute.get_server(server.id).status == "ACTIVE"
