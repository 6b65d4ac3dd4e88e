"""What the tests know of the guest test image: its name, its ready line, its HTTP responder, and SSH into it."""

import re
import subprocess
import urllib.request

GUEST_IMAGE = "stackwright-guest"
READY = re.compile(r"^STACKWRIGHT-GUEST-READY ip=(\S+) metadata=(\S+) hostname=(\S+)", re.M)
GUEST_HTTP_PORT = 8080


def fixed_address(server):
    return next(a["addr"] for addresses in server.addresses.values() for a in addresses
                if a.get("OS-EXT-IPS:type") == "fixed")  # fmt: skip


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a lab address, plain HTTP on purpose)
            return response.read().decode()
    except OSError:
        return None


def guest_ssh(address, key, command):
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o",
         "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes",
         f"root@{address}", command],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
