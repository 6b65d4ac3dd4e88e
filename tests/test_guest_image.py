# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""scripts/build-guest-image: the image builds (or comes from the cache), is a small valid qcow2, and really boots.

Guests run under QEMU/TCG (the lab has no KVM) on a throwaway overlay, their serial console on a pipe. Waits are a
bounded number of polls of that console, never timed assertions. User-mode networking is always `restrict=on`, so a
guest reaches nothing but the forwards set up here: 169.254.169.254 is answered by a local script, not a network.
"""

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "build-guest-image"
QEMU = shutil.which("qemu-system-x86_64")
SKIP_REASON = (
    "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86): the guest image is neither built nor booted"
)
if QEMU is None:
    # Shown in pytest's warnings summary, so the skip is visible without -rs.
    warnings.warn(f"tests/test_guest_image.py skipped: {SKIP_REASON}", stacklevel=1)
pytestmark = pytest.mark.skipif(QEMU is None, reason=SKIP_REASON)

MAX_QCOW2_BYTES = 30 * 2**20
POLL_SECONDS = 0.5
MAX_POLLS = 600  # a TCG boot takes 5-15 s here; 600 polls leave room for a loaded host
READY = re.compile(rb"STACKWRIGHT-GUEST-READY ip=(\S+) metadata=(\S+) hostname=(\S+)\r?\n")
USER_NET = "user,model=virtio-net-pci,restrict=on"


def build(*args):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=1800, check=False
    )
    assert result.returncode == 0, f"build-guest-image failed:\n{result.stderr}"
    return Path(result.stdout.strip()), result.stderr


@pytest.fixture(scope="module")
def image():
    path, _ = build()
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Guest:
    """One QEMU/TCG boot of the image; everything the serial console prints is collected in `output`."""

    def __init__(self, image, workdir, *nic_args):
        overlay = workdir / "overlay.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "qcow2", str(overlay)], check=True
        )
        self.log = workdir / "serial.log"
        self.output = b""
        self.proc = subprocess.Popen(
            [
                QEMU,
                "-machine",
                "accel=tcg",
                "-m",
                "256",
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "stdio",
                "-drive",
                f"file={overlay},if=virtio",
                *nic_args,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with self.log.open("wb") as log:
            while chunk := self.proc.stdout.read1(4096):
                log.write(chunk)
                log.flush()
                self.output += chunk

    def wait_for(self, pattern, start=0):
        """Poll the console until the regex matches after offset `start`; fail after MAX_POLLS polls."""
        regex = re.compile(pattern)
        for _ in range(MAX_POLLS):
            match = regex.search(self.output, start)
            if match:
                return match
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(POLL_SECONDS)
        tail = self.output[-3000:].decode(errors="replace")
        state = f"QEMU exited with {self.proc.returncode}" if self.proc.poll() is not None else "QEMU still running"
        pytest.fail(f"{pattern!r} not on the console after {MAX_POLLS} polls ({state}); console tail:\n{tail}")

    def ready(self):
        """Wait for the ready line and return (ip, metadata, hostname); it must be printed exactly once."""
        match = self.wait_for(READY)
        assert self.output.count(b"STACKWRIGHT-GUEST-READY") == 1
        return tuple(group.decode() for group in match.groups())

    def type(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.reader.join()
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def boot(image, tmp_path):
    guests = []

    def start(*nic_args):
        guests.append(Guest(image, tmp_path, *nic_args))
        return guests[-1]

    yield start
    for guest in guests:
        guest.stop()


def http_get(port):
    """Status and body of GET / on a forwarded port, with a few tries while the forward settles."""
    error = None
    for _ in range(10):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            return response.status, response.read().decode()
        except OSError as exc:
            error = exc
            time.sleep(1)
        finally:
            connection.close()
    pytest.fail(f"no HTTP answer on port {port}: {error}")


def ssh_banner(port):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        return sock.makefile("rb").readline().decode()


def test_image_is_a_small_valid_qcow2(image):
    assert image.name.startswith("stackwright-guest-") and image.suffix == ".qcow2"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(image)], capture_output=True,
                                     text=True, check=True).stdout)  # fmt: skip
    assert info["format"] == "qcow2"
    assert "backing-filename" not in info
    assert 4 * 2**20 < image.stat().st_size <= MAX_QCOW2_BYTES
    subprocess.run(["qemu-img", "check", "-q", str(image)], check=True)
    recorded = image.with_name(image.name + ".sha256").read_text().split()
    assert recorded == [hashlib.sha256(image.read_bytes()).hexdigest(), image.name]


def test_same_recipe_is_served_from_the_cache(image):
    again, log = build()
    assert again == image
    assert "up to date for this recipe" in log


def test_rebuild_gives_the_same_image(image):
    before = image.with_name(image.name + ".sha256").read_text()
    again, log = build("--force")
    assert again == image
    assert "built " in log
    assert image.with_name(image.name + ".sha256").read_text() == before


def test_boots_without_a_nic_and_accepts_console_logins(boot):
    guest = boot("-nic", "none")
    assert guest.ready() == ("none", "failed", "stackwright-guest")
    offset = 0
    for user, password, uid in (("root", "stackwright", "0"), ("cirros", "gocubsgo", "1000")):
        offset = guest.wait_for(rb"login: ", offset).end()
        guest.type(f"{user}\n")
        offset = guest.wait_for(rb"Password: ", offset).end()
        guest.type(f"{password}\n")
        # The shell computes 42, so the echoed command line itself cannot match.
        guest.type("echo CONSOLE-$((40 + 2)) uid=$(id -u)\n")
        offset = guest.wait_for(rf"CONSOLE-42 uid={uid}\r?\n".encode(), offset).end()
        guest.type("exit\n")


def test_boots_when_dhcp_never_answers(boot):
    # A NIC on an empty hub: DHCP gets no answer and must give up in bounded time.
    guest = boot("-netdev", "hubport,id=silent,hubid=0", "-device", "virtio-net-pci,netdev=silent")
    assert guest.ready() == ("none", "failed", "stackwright-guest")


def ssh(port, user, command, *options, env=None):
    """Run a command in the guest with OpenSSH, ignoring the user's SSH configuration and known hosts."""
    if shutil.which("ssh") is None:
        pytest.skip("ssh is not installed (apt-get install openssh-client)")
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-p", str(port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=60", *options,
         f"{user}@127.0.0.1", command],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip


def test_user_network_gets_dhcp_address_and_serves_ports(boot, tmp_path):
    http_port, ssh_port = free_port(), free_port()
    guest = boot(
        "-nic",
        f"{USER_NET},hostfwd=tcp:127.0.0.1:{http_port}-:8080,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
    )
    # Nothing answers 169.254.169.254 on this network.
    assert guest.ready() == ("10.0.2.15", "failed", "stackwright-guest")
    status, body = http_get(http_port)
    assert status == 200
    assert body.strip() == "stackwright-guest hostname=stackwright-guest ip=10.0.2.15"
    assert ssh_banner(ssh_port).startswith("SSH-2.0-dropbear")
    # The documented password, fed to OpenSSH by an askpass helper.
    askpass = tmp_path / "askpass"
    askpass.write_text("#!/bin/sh\necho gocubsgo\n")
    askpass.chmod(0o700)
    env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"}
    options = ("-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "NumberOfPasswordPrompts=1")
    result = ssh(ssh_port, "cirros", "id -u", *options, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1000"]


METADATA_SERVICE = textwrap.dedent(
    '''\
    """One metadata request on stdin/stdout (QEMU's guestfwd runs this per connection)."""
    import json
    import sys

    key_file, hostname, posted_file = sys.argv[1:]
    request = sys.stdin.readline().split()
    length = 0
    while header := sys.stdin.readline().strip():
        if header.lower().startswith("content-length:"):
            length = int(header.split(":", 1)[1])
    if request[1:2] == ["/openstack/latest/meta_data.json"]:
        with open(key_file) as stream:
            key = stream.read().strip()
        body = json.dumps({"uuid": "0", "name": hostname, "hostname": hostname, "public_keys": {"test": key + "\\n"}})
        head = "HTTP/1.1 200 OK\\r\\nContent-Type: application/json"
    elif request[1:2] == ["/latest/meta-data/public-ipv4"]:
        body, head = "203.0.113.7", "HTTP/1.1 200 OK\\r\\nContent-Type: text/plain"
    elif request[:2] == ["POST", "/openstack/2013-10-17/password"]:
        with open(posted_file, "w") as stream:
            stream.write(sys.stdin.read(length))
        body, head = "", "HTTP/1.1 200 OK"
    else:
        body, head = "", "HTTP/1.1 404 Not Found"
    sys.stdout.write(f"{head}\\r\\nContent-Length: {len(body)}\\r\\n\\r\\n{body}")
    '''
)


def test_metadata_sets_hostname_and_ssh_key(boot, tmp_path):
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (apt-get install openssh-client)")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    service = tmp_path / "metadata_service.py"
    service.write_text(METADATA_SERVICE)
    hostname = f"sw-{uuid.uuid4().hex[:8]}"
    posted = tmp_path / "posted"
    command = f"{sys.executable} {service} {key}.pub {hostname} {posted}"
    assert "," not in command, "QEMU option values cannot hold commas"
    http_port, ssh_port = free_port(), free_port()
    # The guest network must contain 169.254.169.254 for QEMU to forward it.
    guest = boot(
        "-nic",
        f"{USER_NET},net=169.254.0.0/16,guestfwd=tcp:169.254.169.254:80-cmd:{command},"
        f"hostfwd=tcp:127.0.0.1:{http_port}-:8080,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
    )
    ip, metadata, name = guest.ready()
    assert ip.startswith("169.254.")
    assert (metadata, name) == ("ok", hostname)
    assert http_get(http_port) == (200, f"stackwright-guest hostname={hostname} ip={ip}\n")
    for user, uid in (("root", "0"), ("cirros", "1000")):
        result = ssh(
            ssh_port, user, "hostname; id -u", "-i", str(key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [hostname, uid]
    # Tempest reads and posts metadata with curl, as on CirrOS: the value byte for byte, the posted data intact.
    key_options = ("-i", str(key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes")
    assert ssh(ssh_port, "cirros", "curl -V", *key_options).returncode == 0
    result = ssh(ssh_port, "cirros", "curl http://169.254.169.254/latest/meta-data/public-ipv4", *key_options)
    assert (result.returncode, result.stdout) == (0, "203.0.113.7"), result.stderr
    data = uuid.uuid4().hex * 3
    result = ssh(ssh_port, "cirros", f"curl -X POST -d {data} http://169.254.169.254/openstack/2013-10-17/password",
                 *key_options)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert posted.read_text() == data
    result = ssh(ssh_port, "cirros", "curl -sf http://169.254.169.254/nothing-here", *key_options)
    assert result.returncode == 22
    # Tempest's commands as root: sudo runs them; DHCP renewals signal udhcpc through CirrOS's pid file.
    result = ssh(ssh_port, "root", "sudo -n id -u && kill -0 $(cat /var/run/udhcpc.eth0.pid)", *key_options)
    assert (result.returncode, result.stdout.split()) == (0, ["0"]), result.stderr
    # Tempest counts the guest's disks with util-linux's lsblk: a header, then the virtio disk as a whole disk.
    result = ssh(ssh_port, "root", "lsblk -lb --nodeps", *key_options)
    assert result.returncode == 0, result.stderr
    header, *disks = (line.split() for line in result.stdout.splitlines())
    assert header[:6] == ["NAME", "MAJ:MIN", "RM", "SIZE", "RO", "TYPE"]
    assert [(disk[0], disk[5]) for disk in disks] == [("vda", "disk")]
    result = ssh(ssh_port, "cirros", "sudo id -u", *key_options)
    assert result.returncode == 1
    assert "log in as root" in result.stderr
