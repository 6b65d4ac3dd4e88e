"""A change to one config value restarts only the service it belongs to; the other services keep running."""

import socket
from pathlib import Path

from test_infra import controllers, mgmt

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
# Every infrastructure role, as site.yml runs them (the converge's prechecks and host preparation restart nothing, and
# the idempotence step already ran them).
INFRA_PLAYBOOK = PLAYBOOKS / "infra.yml"
# Putting the inventory's value back needs only memcached's own play.
MEMCACHED_PLAYBOOK = PLAYBOOKS / "memcached.yml"
OTHER_UNITS = ("mariadb", "rabbitmq-server", "haproxy", "chrony")


def main_pids(remote, name, units):
    out = remote(name).check_output("systemctl show --property=MainPID --value " + " ".join(units))
    return dict(zip(units, out.split(), strict=True))


def memcached_limit(address):
    with socket.create_connection((address, 11211), timeout=10) as conn:
        conn.sendall(b"stats\r\nquit\r\n")
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    stats = dict(line.split()[1:3] for line in reply.decode().splitlines() if line.startswith("STAT "))
    return int(stats["limit_maxbytes"])


def test_memcached_change_restarts_only_memcached(remote, inventory, playbook_runner):
    names = controllers(inventory)
    units = ("memcached", *OTHER_UNITS)
    before = {name: main_pids(remote, name, units) for name in names}
    before_limits = {name: memcached_limit(mgmt(inventory, name)) for name in names}
    assert 96 * 1024 * 1024 not in before_limits.values(), f"memcached already has the test's limit: {before_limits}"

    run, _ = playbook_runner(INFRA_PLAYBOOK, "-e", "memcached_memory_mb=96")
    assert run.returncode == 0, run.stdout[-3000:]
    after = {name: main_pids(remote, name, units) for name in names}
    for name in names:
        assert after[name]["memcached"] != before[name]["memcached"], f"memcached on {name} kept running"
        for unit in OTHER_UNITS:
            assert after[name][unit] == before[name][unit], f"{unit} on {name} was restarted"
        assert memcached_limit(mgmt(inventory, name)) == 96 * 1024 * 1024

    # Back to the inventory's value, so the scenario ends converged.
    run, _ = playbook_runner(MEMCACHED_PLAYBOOK)
    assert run.returncode == 0, run.stdout[-3000:]
    for name in names:
        assert memcached_limit(mgmt(inventory, name)) == before_limits[name], f"memcached on {name} kept 96 MiB"
