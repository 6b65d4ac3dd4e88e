"""Adding and removing a compute host (`playbooks/add-compute.yml`, `playbooks/remove-compute.yml`, `make day2
INVENTORY=...`). Both refuse to run without --limit or with a host outside the compute group. On the compute host the
inventory marks with `add_remove_compute_test: true` (host var; it must be in no other role group, and another compute
host must take its instances): remove-compute refuses while a server runs there, --check changes nothing, a run with
remove_compute_drain=true moves the server away and takes the host out (nova-compute service, cell mapping, network
agents, resource provider, units stopped and disabled, the other hosts untouched), a second run changes nothing; then
add-compute brings it back (mapped to the cell again, nova-compute up, a proof server ACTIVE there with its ready line,
and deleted), and a second add changes nothing on it. Without a marked host the lifecycle tests skip and say why. The
host ends deployed and the test server deleted whatever happens."""

import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ADD = REPO / "playbooks" / "add-compute.yml"
REMOVE = REPO / "playbooks" / "remove-compute.yml"
MARK = "add_remove_compute_test"
GUEST_IMAGE = "stackwright-guest"
FLAVOR = "m1.micro"
# The registry's compute units (services/*.yml) that remove-compute stops and add-compute starts again.
UNITS = ("nova-compute", "neutron-ovn-agent", "ovn-controller", "libvirtd")


def failed_run(run):
    return f"exit {run.returncode}\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"


def output(run):
    return " ".join(run.stdout.split())


def nova_name(inventory, host):
    """Nova's name of an inventory host (the nova role's nova_host, by default the inventory name)."""
    return inventory["hostvars"][host].get("nova_host", host)


def chassis_name(inventory, host):
    """Host name of the host's OVN chassis, which neutron's agents carry (the ovn role's ovn_system_id)."""
    return inventory["hostvars"][host].get("ovn_system_id", host)


def compute_services(conn, host):
    return [service for service in conn.compute.services(binary="nova-compute") if service.host == host]


def agents(conn, host):
    return [agent for agent in conn.network.agents(host=host) if agent.host == host]


def hypervisor_names(conn, host):
    return sorted(
        hypervisor.name
        for hypervisor in conn.compute.hypervisors(details=True)
        if (hypervisor.service_details or {}).get("host") == host
    )


def providers(conn, names):
    return [provider for name in names for provider in conn.placement.resource_providers(name=name)]


def unit_file_state(remote, host, unit):
    """enabled, disabled, static (pulled in by another unit, as ovn-controller may be by ovn-host), ..."""
    return remote(host).check_output(f"systemctl show --property=UnitFileState --value {unit}.service")


def mapped_hosts(remote, inventory):
    """Hosts mapped to a cell, from nova-manage on the first controller."""
    controller = remote(inventory["groups"]["controller"][0])
    venv = controller.check_output("ls -d /openstack/venvs/nova-* | sort -V | tail -n 1")
    out = controller.check_output(f"{venv}/bin/nova-manage cell_v2 list_hosts")
    return {row.split("|")[-2].strip() for row in out.splitlines()[3:-1]}


@pytest.mark.parametrize(("playbook", "verb"), [(ADD, "deploys"), (REMOVE, "removes")], ids=["add", "remove"])
def test_a_run_without_limit_is_refused(playbook, verb, playbook_runner):
    # --check: even a broken refusal could not change the cloud.
    run, recap = playbook_runner(playbook, "--check")
    assert run.returncode != 0, failed_run(run)
    assert f"{playbook.name} {verb} only the hosts you name" in output(run), failed_run(run)
    assert recap and not any(recap.values()), failed_run(run)


@pytest.mark.parametrize("playbook", [ADD, REMOVE], ids=["add", "remove"])
def test_a_host_outside_the_compute_group_is_refused(playbook, inventory, playbook_runner):
    outside = next(
        (host for host in inventory["groups"]["controller"] if host not in inventory["groups"]["compute"]), None
    )
    if outside is None:
        pytest.skip("every controller of this inventory is also a compute host (the all-in-one lab)")
    run, recap = playbook_runner(playbook, "--check", "--limit", outside)
    assert run.returncode != 0, failed_run(run)
    assert f"holds {outside}, which is not in the compute group" in output(run), failed_run(run)
    assert set(recap) == {outside} and recap[outside] == 0, failed_run(run)


@pytest.fixture(scope="module")
def target(inventory):
    """The compute host the inventory marks for this test."""
    marked = sorted(host for host, hostvars in inventory["hostvars"].items() if hostvars.get(MARK))
    if not marked:
        pytest.skip(
            f"no host of {inventory['path']} is marked with {MARK}: true; mark a compute host that is in no other "
            "role group (the test removes it from the cloud and adds it back)"
        )
    host = marked[0]
    if host not in inventory["groups"]["compute"]:
        pytest.skip(f"{host} is marked with {MARK}, but it is not in the compute group")
    others = [group for group in ("controller", "network", "storage") if host in inventory["groups"][group]]
    if others:
        pytest.skip(f"{host} is marked with {MARK}, but it is also in {', '.join(others)}: the playbooks refuse it")
    if len(inventory["groups"]["compute"]) < 2:
        pytest.skip(f"{host} is the only compute host: its instances need another one to move to")
    return host


@pytest.fixture(scope="module")
def deployed(target, conn, inventory, playbook_runner):
    """The target host in the cloud at the start (added first when an earlier run left it out), and again at the end."""

    def ensure():
        if not compute_services(conn, nova_name(inventory, target)):
            run, _ = playbook_runner(ADD, "--limit", target)
            assert run.returncode == 0, failed_run(run)

    ensure()
    yield target
    ensure()


@pytest.fixture(scope="module")
def server(conn, inventory, deployed, delete_servers):
    """One ACTIVE server on the target host, without a port. Deleted afterwards, wherever it ended up."""
    host = nova_name(inventory, deployed)
    foreign = [server.name for server in conn.compute.servers(all_projects=True, compute_host=host)]
    if foreign:
        pytest.skip(
            f"{deployed} holds servers this test did not create ({', '.join(foreign)}); removing it would move them"
        )
    image = conn.image.find_image(GUEST_IMAGE, ignore_missing=False)
    flavor = conn.compute.find_flavor(FLAVOR, ignore_missing=False)
    created = conn.compute.create_server(
        name=f"remove-compute-{uuid.uuid4().hex[:6]}", image_id=image.id, flavor_id=flavor.id, networks="none",
        availability_zone=f"nova:{host}",
    )  # fmt: skip
    try:
        created = conn.compute.wait_for_server(created, status="ACTIVE", failures=["ERROR"], interval=3, wait=600)
        assert created.compute_host == host
        yield created
    finally:
        delete_servers(conn, [created])


@pytest.fixture(scope="module")
def before(conn, inventory, deployed):
    """What the cloud knows of the target host and of the other compute hosts before the removal."""
    computes = inventory["groups"]["compute"]
    return {
        "hypervisors": hypervisor_names(conn, nova_name(inventory, deployed)),
        "others": [host for host in computes if host != deployed],
    }


def assert_others_untouched(conn, inventory, others):
    for host in others:
        services = compute_services(conn, nova_name(inventory, host))
        assert [(s.status, s.state) for s in services] == [("enabled", "up")], (host, services)
        assert agents(conn, chassis_name(inventory, host)), host
        assert all(agent.is_alive for agent in agents(conn, chassis_name(inventory, host))), host


def test_a_removal_is_refused_while_the_host_has_instances(conn, inventory, remote, deployed, server, playbook_runner):
    run, recap = playbook_runner(REMOVE, "--limit", deployed)
    assert run.returncode != 0, failed_run(run)
    out = output(run)
    assert f"{deployed} still has 1 instance(s): {server.name} ACTIVE" in out, failed_run(run)
    assert "Nothing was changed" in out
    assert recap == {deployed: 0}, failed_run(run)
    services = compute_services(conn, nova_name(inventory, deployed))
    assert [(s.status, s.state) for s in services] == [("enabled", "up")], services
    for unit in UNITS:
        assert remote(deployed).service(unit).is_running, unit


def test_check_mode_reports_the_removal_and_changes_nothing(conn, inventory, remote, deployed, server,
                                                            playbook_runner):  # fmt: skip
    run, _ = playbook_runner(REMOVE, "--limit", deployed, "-e", "remove_compute_drain=true", "--check")
    assert run.returncode == 0, failed_run(run)
    out = output(run)
    assert f"Would move {server.name} ({server.id}), live" in out, failed_run(run)
    assert "nova-compute would be disabled and deleted" in out, failed_run(run)
    assert "Would stop and disable on the host: nova-compute.service" in out, failed_run(run)
    services = compute_services(conn, nova_name(inventory, deployed))
    assert [(s.status, s.state) for s in services] == [("enabled", "up")], services
    assert conn.compute.get_server(server.id).compute_host == nova_name(inventory, deployed)
    for unit in UNITS:
        assert remote(deployed).service(unit).is_running, unit


def test_a_removal_drains_the_host_and_takes_it_out(conn, inventory, remote, deployed, server, before,
                                                    playbook_runner):  # fmt: skip
    host = nova_name(inventory, deployed)
    assert before["hypervisors"], f"nova has no hypervisor for {host} before the removal"
    run, recap = playbook_runner(REMOVE, "--limit", deployed, "-e", "remove_compute_drain=true")
    assert run.returncode == 0, failed_run(run)
    assert set(recap) == {deployed} and recap[deployed] > 0, failed_run(run)
    out = output(run)
    assert f"Moved {server.name} ({server.id}), live" in out, failed_run(run)
    moved = conn.compute.get_server(server.id)
    assert moved.status == "ACTIVE" and moved.compute_host in {nova_name(inventory, h) for h in before["others"]}
    assert not compute_services(conn, host)
    assert host not in mapped_hosts(remote, inventory)
    assert not agents(conn, chassis_name(inventory, deployed))
    assert not providers(conn, before["hypervisors"]), before["hypervisors"]
    for unit in (*UNITS, "ovn-host"):
        assert not remote(deployed).service(unit).is_running, unit
        assert unit_file_state(remote, deployed, unit) != "enabled", unit
    assert_others_untouched(conn, inventory, before["others"])


def test_a_second_removal_changes_nothing(deployed, server, before, playbook_runner):
    run, recap = playbook_runner(REMOVE, "--limit", deployed)
    assert run.returncode == 0, failed_run(run)
    assert recap == {deployed: 0}, failed_run(run)
    assert "nova-compute: no service record (already removed)" in output(run), failed_run(run)


def test_add_compute_brings_the_host_back_and_proves_it(conn, inventory, remote, deployed, before, playbook_runner):
    host = nova_name(inventory, deployed)
    run, recap = playbook_runner(ADD, "--limit", deployed)
    assert run.returncode == 0, failed_run(run)
    assert set(recap) == {deployed}, failed_run(run)
    out = output(run)
    assert f"{deployed} (nova host {host}): mapped to cell1 in this run." in out, failed_run(run)
    assert f"Proof: server add-compute-{deployed} (" in out, failed_run(run)
    assert f"ACTIVE on {host}, console STACKWRIGHT-GUEST-READY" in out, failed_run(run)
    assert host in mapped_hosts(remote, inventory)
    services = compute_services(conn, host)
    assert [(s.status, s.state) for s in services] == [("enabled", "up")], services
    assert providers(conn, hypervisor_names(conn, host))
    chassis = agents(conn, chassis_name(inventory, deployed))
    assert chassis and all(agent.is_alive for agent in chassis), chassis
    for unit in UNITS:
        assert remote(deployed).service(unit).is_running, unit
        assert unit_file_state(remote, deployed, unit) in {"enabled", "static"}, unit
    assert not list(conn.compute.servers(all_projects=True, name=f"^add-compute-{deployed}$"))
    assert_others_untouched(conn, inventory, before["others"])


def test_a_second_add_changes_nothing_on_the_host(conn, deployed, playbook_runner):
    run, recap = playbook_runner(ADD, "--limit", deployed)
    assert run.returncode == 0, failed_run(run)
    assert recap == {deployed: 0}, failed_run(run)
    out = output(run)
    assert "already mapped to cell1" in out, failed_run(run)
    assert f"Proof: server add-compute-{deployed} (" in out, failed_run(run)
    assert not list(conn.compute.servers(all_projects=True, name=f"^add-compute-{deployed}$"))
