# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Build the Stackwright guest test image (a small CirrOS-like qcow2) offline from Debian trixie packages.

Debian's cloud kernel boots, through syslinux on a one-partition FAT disk, into an initramfs made of busybox-static
and dropbear. Its init gets an address by DHCP on every NIC, reads the OpenStack (or EC2) metadata service with nc,
starts SSH on port 22 and an HTTP responder on port 8080, and prints one ready line on the serial console.
See docs/guest-image.md. Nothing here needs root: packages are fetched with a private apt configuration and the disk
is written through mtools with offsets, never mounted.

Prints the path of the qcow2 on stdout; progress goes to stderr. A rebuild is skipped when an image for the same
recipe (this module, the guest's scripts and the package versions) is already in the cache. Run by
scripts/build-guest-image.
"""

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import posixpath
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from stackwright_tools import REPO

IMAGE_NAME = "stackwright-guest"
# Bump when the image's behaviour changes in a way the recipe hash would not show (it covers this file anyway).
IMAGE_SERIES = "1"
SUITE = "trixie"
ARCH = "amd64"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
# The cloud kernel has virtio core and virtio_pci built in but the NIC, disk and RNG drivers as modules.
GUEST_MODULES = ("virtio_net", "virtio_blk", "virtio_rng")
# Tempest lists the guest's disks with `lsblk -lb --nodeps` (CirrOS has util-linux's); busybox has no lsblk. These are
# util-linux and the packages of the libraries lsblk links (util-linux's own dependencies would bring PAM and systemd).
LSBLK_PACKAGES = (
    "util-linux", "libblkid1", "libmount1", "libsmartcols1", "libtinfo6", "libudev1", "libcap2", "libselinux1",
    "libpcre2-8-0",
)  # fmt: skip
LIST_MAX_AGE = 12 * 3600
# Fixed timestamp for files in the initramfs and on the FAT partition, so rebuilds compare equal.
EPOCH = 1735689600
SECTOR = 512
PARTITION_START = 2048  # sectors: the usual 1 MiB alignment
MULTIARCH = "x86_64-linux-gnu"
HOST_TOOLS = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg-deb": "dpkg",
    "mkfs.fat": "dosfstools",
    "mcopy": "mtools",
    "mattrib": "mtools",
    "qemu-img": "qemu-utils",
}
# Test image credentials, public on purpose (docs/guest-image.md); SHA-512 crypt from `busybox mkpasswd -m sha512`.
ROOT_PASSWORD_HASH = (
    "$6$stackwrightsalt$QUlFWdVBFNSVQOut71xo7CckZ/Al8eR3iVKspOodXgXZ7olRY3/sl5iyiJ47uidn7jjWX7dJS3xSgDiorX/fZ."  # noqa: S105
)
CIRROS_PASSWORD_HASH = (
    "$6$stackwrightsalt$NMgi0hxy0rjaE5LIS3utQOMd2IF2DNuL6/h6lV5axqu5MdLcXNDbgPkc5zYK9eMc3sX1cTth4vLaYJTD0Jlfv1"  # noqa: S105
)

SYSLINUX_CFG = """SERIAL 0 115200
DEFAULT stackwright
PROMPT 0
TIMEOUT 1
LABEL stackwright
  LINUX /vmlinuz
  INITRD /initrd.gz
  APPEND console=tty0 console=ttyS0,115200n8
"""

# The guest's own scripts, real shell files linted by shellcheck (make lint): where each goes in the initramfs.
GUEST_SCRIPT_DIR = REPO / "scripts" / "guest-image"
GUEST_SCRIPTS = {
    "init": "init",
    "etc/init.d/rcS": "rcS",
    "etc/udhcpc.script": "udhcpc.script",
    "usr/bin/curl": "curl",
    "usr/bin/sudo": "sudo",
}
ETC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\ncirros:x:1000:1000:cirros:/home/cirros:/bin/sh\n",
    "etc/group": "root:x:0:\ncirros:x:1000:\n",
    "etc/shadow": f"root:{ROOT_PASSWORD_HASH}:20000::::::\ncirros:{CIRROS_PASSWORD_HASH}:20000::::::\n",
    "etc/shells": "/bin/sh\n/bin/ash\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
    "etc/hostname": "stackwright-guest\n",
    "etc/hosts": "127.0.0.1 localhost\n",
    "etc/profile": 'export PATH=/usr/sbin:/usr/bin:/sbin:/bin\nPS1="$(whoami)@$(hostname):\\w\\$ "\n',
}


class BuildError(Exception):
    """A failure with a message that says what to fix."""


def log(message):
    print(f"build-guest-image: {message}", file=sys.stderr, flush=True)


def run(cmd, **kwargs):
    """Run a command; on failure raise BuildError with its output."""
    result = subprocess.run(cmd, capture_output=True, check=False, **kwargs)
    if result.returncode != 0:
        output = (result.stderr or result.stdout or b"").decode(errors="replace").strip()
        raise BuildError(f"{' '.join(str(c) for c in cmd)} failed ({result.returncode}): {output[-2000:]}")
    return result.stdout


def check_host_tools():
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise BuildError(f"missing host tools; install them with: apt-get install {' '.join(missing)}")
    if os.uname().machine != "x86_64":
        raise BuildError("the build runs the guest's busybox and syslinux installer, so it needs an x86_64 host")


def write_if_changed(path, text):
    """Leave unchanged files alone: apt rebuilds its 40 MB cache when its configuration looks newer."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def deb_path(debs, package, version):
    return debs / f"{package}_{version.replace(':', '%3a')}.deb"


class PrivateApt:
    """apt-get/apt-cache on trixie's indexes in the cache; the host's apt configuration and state are untouched."""

    def __init__(self, root):
        self.root = root
        self.config = root / "apt.conf"
        self.lists = root / "lists"

    def setup(self):
        for sub in ("lists/partial", "archives/partial", "parts"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if not (self.root / "status").exists():
            (self.root / "status").touch()
        sources = "".join(
            f"deb [signed-by={KEYRING}] {mirror} {suite} main\n"
            for mirror, suite in (
                (MIRROR, SUITE),
                (MIRROR, f"{SUITE}-updates"),
                (SECURITY_MIRROR, f"{SUITE}-security"),
            )
        )
        write_if_changed(self.root / "sources.list", sources)
        root = self.root
        settings = {
            "Dir::Etc::main": "/dev/null",
            "Dir::Etc::parts": root / "parts",
            "Dir::Etc::sourcelist": root / "sources.list",
            "Dir::Etc::sourceparts": root / "parts",
            "Dir::Etc::preferences": "/dev/null",
            "Dir::Etc::preferencesparts": root / "parts",
            "Dir::State": root,
            "Dir::State::lists": self.lists,
            "Dir::State::status": root / "status",
            "Dir::Cache": root,
            "Dir::Cache::archives": root / "archives",
            "APT::Architecture": ARCH,
            "Acquire::Languages": "none",
            # Keep the cache small: indexes stay compressed, and no second (source) package cache.
            "Acquire::GzipIndexes": "true",
            "Dir::Cache::srcpkgcache": "",
            # Root would hand downloads to the _apt user, who cannot write into a home directory's cache.
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else None,
        }
        lines = [f'{key} "{value}";' for key, value in settings.items() if value is not None]
        lines.append(f'APT::Architectures {{ "{ARCH}"; }};')
        write_if_changed(self.config, "\n".join(lines) + "\n")

    def _env(self):
        return {**os.environ, "APT_CONFIG": str(self.config), "LC_ALL": "C"}

    def lists_age(self):
        indexes = list(self.lists.glob("*_Packages*"))
        if not indexes:
            return None
        return time.time() - min(p.stat().st_mtime for p in indexes)

    def update(self, refresh, offline):
        age = self.lists_age()
        if offline:
            if age is None:
                raise BuildError("--offline but no package lists in the cache yet: run once with network access")
            return
        if not refresh and age is not None and age < LIST_MAX_AGE:
            return
        log(f"updating the {SUITE} package lists")
        try:
            run(["apt-get", "update", "-q"], env=self._env())
        except BuildError as error:
            if age is None:
                raise
            log(f"warning: could not update the package lists, using the cached ones: {error}")
            return
        for index in self.lists.glob("*_Packages*"):
            index.touch()

    def candidates(self, packages):
        """Package -> (version, names it depends on) of the candidate versions, in one apt-cache call."""
        out = run(["apt-cache", "show", "--no-all-versions", *packages], env=self._env()).decode()
        found = {}
        for stanza in out.strip().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(" "):
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            # First alternative of each dependency, without version or architecture qualifiers.
            relations = fields.get("Depends", "").split(",")
            depends = [d.split("|")[0].split("(")[0].split(":")[0].strip() for d in relations]
            found[fields["Package"]] = (fields["Version"], [d for d in depends if d])
        missing = set(packages) - set(found)
        if missing:
            raise BuildError(f"not in {SUITE}: {', '.join(sorted(missing))}")
        return found

    def download(self, package, version, debs):
        path = deb_path(debs, package, version)
        if path.exists():
            return path
        with tempfile.TemporaryDirectory(dir=debs) as tmp:
            run(["apt-get", "download", "-q", f"{package}={version}"], cwd=tmp, env=self._env())
            (fetched,) = Path(tmp).glob("*.deb")
            fetched.rename(path)
        return path


def resolve_packages(apt):
    """Package name -> version of everything the image is made from."""
    first = apt.candidates([KERNEL_METAPACKAGE, "busybox-static", "syslinux", "syslinux-common", *LSBLK_PACKAGES])
    meta_version, meta_depends = first.pop(KERNEL_METAPACKAGE)
    kernel = next((d for d in meta_depends if d.startswith("linux-image-")), None)
    if kernel is None:
        raise BuildError(f"{KERNEL_METAPACKAGE} {meta_version} does not depend on a linux-image package")
    versions = {package: version for package, (version, _) in first.items()}
    # dropbear is dynamically linked: its whole dependency closure (the C library and a few others) comes along;
    # only the shared libraries it loads end up in the image.
    pending = {kernel, "dropbear-bin"}
    while pending:
        found = apt.candidates(sorted(pending))
        versions.update((package, version) for package, (version, _) in found.items())
        wanted = {dep for package, (_, depends) in found.items() if package != kernel for dep in depends}
        pending = wanted - set(versions)
    if len(versions) > 20 + len(LSBLK_PACKAGES):
        raise BuildError(f"dropbear-bin's dependencies grew unexpectedly: {', '.join(sorted(versions))}")
    return dict(sorted(versions.items()))


class PackageFiles:
    """Regular files and symlinks of .deb payloads, in memory, keyed by path without a leading slash."""

    def __init__(self):
        self.files = {}
        self.links = {}

    def add_deb(self, deb):
        tar_bytes = run(["dpkg-deb", "--fsys-tarfile", str(deb)])
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            for member in tar:
                name = posixpath.normpath(member.name).lstrip("/")
                if member.isfile():
                    self.files[name] = tar.extractfile(member).read()
                elif member.issym():
                    self.links[name] = member.linkname

    def resolve(self, path):
        for _ in range(16):
            if path in self.files:
                return path
            if path not in self.links:
                return None
            target = self.links[path]
            if target.startswith("/"):
                path = posixpath.normpath(target.lstrip("/"))
            else:
                path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        return None

    def read(self, path):
        real = self.resolve(path)
        if real is None:
            raise BuildError(f"{path} is not in the downloaded packages")
        return self.files[real]

    def find(self, *candidates):
        for path in candidates:
            if self.resolve(path) is not None:
                return path
        raise BuildError(f"none of {', '.join(candidates)} is in the downloaded packages")


def elf_sections(data):
    """Section name -> (type, offset, size, link) of a little-endian ELF64 file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise BuildError("not a little-endian 64-bit ELF file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_offset = headers[shstrndx][4]
    sections = {}
    for index, header in enumerate(headers):
        name_start = names_offset + header[0]
        name = data[name_start : data.index(b"\0", name_start)].decode()
        sections[name] = (header[1], header[4], header[5], header[6], index)
    return sections, headers


def elf_needed(data):
    """DT_NEEDED sonames and the program interpreter of an ELF executable or library."""
    sections, headers = elf_sections(data)
    interp = None
    if ".interp" in sections:
        _, offset, size, _, _ = sections[".interp"]
        interp = data[offset : offset + size].rstrip(b"\0").decode()
    needed = []
    dynamic = sections.get(".dynamic")
    if dynamic:
        _, offset, size, link, _ = dynamic
        strtab_offset = headers[link][4]
        for entry in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, entry)
            if tag == 0:
                break
            if tag == 1:
                start = strtab_offset + value
                needed.append(data[start : data.index(b"\0", start)].decode())
    return needed, interp


def module_depends(data):
    sections, _ = elf_sections(data)
    _, offset, size, _, _ = sections[".modinfo"]
    for field in data[offset : offset + size].split(b"\0"):
        if field.startswith(b"depends="):
            return [d for d in field[len(b"depends=") :].decode().split(",") if d]
    return []


class Initramfs:
    """A newc cpio archive built in memory: every entry owned by root unless told, all with one timestamp."""

    def __init__(self):
        self.entries = {}

    def _parents(self, path):
        parent = posixpath.dirname(path)
        if parent and parent not in self.entries:
            self.directory(parent)

    def directory(self, path, mode=0o755, owner=0):
        self._parents(path)
        self.entries[path] = (0o040000 | mode, b"", owner, (0, 0))

    def file(self, path, data, mode=0o644, owner=0):
        self._parents(path)
        self.entries[path] = (0o100000 | mode, data if isinstance(data, bytes) else data.encode(), owner, (0, 0))

    def symlink(self, path, target):
        self._parents(path)
        self.entries[path] = (0o120777, target.encode(), 0, (0, 0))

    def char_device(self, path, major, minor, mode=0o600):
        self._parents(path)
        self.entries[path] = (0o020000 | mode, b"", 0, (major, minor))

    def archive(self):
        out = io.BytesIO()

        def entry(ino, name, mode, data, owner, rdev):
            encoded = name.encode() + b"\0"
            fields = (ino, mode, owner, owner, 1, EPOCH, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
            out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
            out.write(b"\0" * (-out.tell() % 4) + data)
            out.write(b"\0" * (-out.tell() % 4))

        for ino, path in enumerate(sorted(self.entries), start=1):
            mode, data, owner, rdev = self.entries[path]
            entry(ino, path, mode, data, owner, rdev)
        entry(0, "TRAILER!!!", 0, b"", 0, (0, 0))
        return gzip.compress(out.getvalue(), compresslevel=9, mtime=0)


def add_binary(initramfs, pkgs, source, target, added):
    """Copy an ELF binary and, recursively, the shared libraries and loader it needs."""
    data = pkgs.read(source)
    initramfs.file(target, data, mode=0o755)
    needed, interp = elf_needed(data)
    if interp and interp not in added:
        added.add(interp)
        loader = pkgs.find(interp.lstrip("/"), "usr/" + interp.lstrip("/"))
        initramfs.file(interp.lstrip("/"), pkgs.read(loader), mode=0o755)
    for soname in needed:
        target_lib = f"lib/{MULTIARCH}/{soname}"
        if target_lib in added:
            continue
        added.add(target_lib)
        if interp and soname == posixpath.basename(interp):
            initramfs.symlink(target_lib, interp)
            continue
        source_lib = pkgs.find(f"usr/lib/{MULTIARCH}/{soname}", f"lib/{MULTIARCH}/{soname}")
        add_binary(initramfs, pkgs, source_lib, target_lib, added)


def kernel_parts(pkgs):
    """The kernel image, its release and the guest modules (dependencies first) as (name, bytes)."""
    vmlinuz = [p for p in pkgs.files if p.startswith("boot/vmlinuz-")]
    if len(vmlinuz) != 1:
        raise BuildError(f"expected one kernel image in the kernel package, found {vmlinuz}")
    release = vmlinuz[0].removeprefix("boot/vmlinuz-")
    modules_dir = f"usr/lib/modules/{release}"
    index = {}
    for path in pkgs.files:
        if path.startswith(modules_dir + "/kernel/"):
            base = posixpath.basename(path)
            for suffix in (".ko.xz", ".ko.zst", ".ko"):
                if base.endswith(suffix):
                    index[base.removesuffix(suffix).replace("-", "_")] = path
    builtin_lines = pkgs.read(f"{modules_dir}/modules.builtin").decode().split()
    builtin = {posixpath.basename(line).removesuffix(".ko").replace("-", "_") for line in builtin_lines}
    ordered = []
    loaded = {}

    def visit(name):
        if name in loaded or name in builtin:
            return
        if name not in index:
            raise BuildError(f"kernel {release} has no {name}, neither built in nor as a module")
        raw = pkgs.read(index[name])
        if index[name].endswith(".xz"):
            raw = lzma.decompress(raw)
        elif index[name].endswith(".zst"):
            raise BuildError("zstd-compressed modules are not handled; extend kernel_parts()")
        loaded[name] = raw
        for dependency in module_depends(raw):
            visit(dependency.replace("-", "_"))
        ordered.append(name)

    for module in GUEST_MODULES:
        visit(module)
    return pkgs.read(vmlinuz[0]), release, [(name, loaded[name]) for name in ordered]


def build_initramfs(pkgs, modules, work):
    initramfs = Initramfs()
    for directory in ("proc", "sys", "dev", "run", "root", "etc/init.d", "var/log", "var/run"):
        initramfs.directory(directory, mode=0o700 if directory == "root" else 0o755)
    initramfs.directory("tmp", mode=0o1777)
    initramfs.directory("home/cirros", owner=1000)
    initramfs.char_device("dev/console", 5, 1)
    initramfs.char_device("dev/null", 1, 3, mode=0o666)

    busybox_path = pkgs.find("usr/bin/busybox", "bin/busybox")
    busybox = pkgs.read(busybox_path)
    initramfs.file("bin/busybox", busybox, mode=0o755)
    # The applet list comes from the guest's busybox itself (a static x86_64 binary).
    runnable = work / "busybox"
    runnable.write_bytes(busybox)
    runnable.chmod(0o755)
    applets = run([str(runnable), "--list-full"]).decode().split()
    for applet in applets:
        if applet != "bin/busybox":
            initramfs.symlink(applet, "/bin/busybox")

    added = set()
    dropbear = pkgs.find("usr/sbin/dropbear", "sbin/dropbear")
    add_binary(initramfs, pkgs, dropbear, "usr/sbin/dropbear", added)
    # Over busybox's applet, if it ever has one: Tempest parses util-linux's output.
    add_binary(initramfs, pkgs, pkgs.find("usr/bin/lsblk", "bin/lsblk"), "usr/bin/lsblk", added)

    for name, data in modules:
        initramfs.file(f"lib/modules/{name}.ko", data)
    initramfs.file("etc/guest-modules", "".join(f"{name}\n" for name, _ in modules))
    for path, text in ETC_FILES.items():
        initramfs.file(path, text, mode=0o600 if path == "etc/shadow" else 0o644)
    for path, script in GUEST_SCRIPTS.items():
        initramfs.file(path, (GUEST_SCRIPT_DIR / script).read_text(), mode=0o755)
    return initramfs.archive()


def chs(lba):
    """CHS triple of an MBR entry for a 255-head, 63-sector geometry (capped like every tool does)."""
    cylinder, rest = divmod(lba, 255 * 63)
    if cylinder > 1023:
        return bytes((254, 0xFF, 0xFF))
    head, sector = divmod(rest, 63)
    return bytes((head, (sector + 1) | ((cylinder >> 2) & 0xC0), cylinder & 0xFF))


def master_boot_record(boot_code, start, sectors):
    """syslinux's MBR code plus one active FAT16 (LBA) partition."""
    mbr = bytearray(SECTOR)
    mbr[: len(boot_code)] = boot_code[:440]
    mbr[440:444] = b"SWG1"  # disk signature: fixed so rebuilds compare equal
    entry = b"\x80" + chs(start) + b"\x0e" + chs(start + sectors - 1) + struct.pack("<II", start, sectors)
    mbr[446:462] = entry
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def build_disk(work, pkgs, vmlinuz, initrd, output):
    payload = len(vmlinuz) + len(initrd) + 256 * 1024
    # Room for syslinux and FAT overhead, rounded up to 8 MiB steps.
    partition_bytes = -(-(payload * 5 // 4 + 2 * 2**20) // (8 * 2**20)) * 8 * 2**20
    partition_sectors = partition_bytes // SECTOR
    raw = work / "disk.raw"
    with raw.open("wb") as disk:
        disk.truncate((PARTITION_START + partition_sectors) * SECTOR)
        disk.write(master_boot_record(pkgs.read("usr/lib/syslinux/mbr/mbr.bin"), PARTITION_START, partition_sectors))
    mtools_env = {
        **os.environ,
        "MTOOLS_SKIP_CHECK": "1",
        "MTOOLSRC": "/dev/null",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(EPOCH),
    }
    run(
        [
            "mkfs.fat",
            f"--offset={PARTITION_START}",
            "-h",
            str(PARTITION_START),
            "-F",
            "16",
            "-i",
            "53574731",
            "-n",
            "STACKWRIGHT",
            "--invariant",
            str(raw),
            str(partition_bytes // 1024),
        ]
    )
    target = f"{raw}@@{PARTITION_START * SECTOR}"
    for name, data in (("vmlinuz", vmlinuz), ("initrd.gz", initrd), ("syslinux.cfg", SYSLINUX_CFG.encode())):
        source = work / name
        source.write_bytes(data)
        os.utime(source, (EPOCH, EPOCH))
        run(["mcopy", "-m", "-i", target, str(source), f"::{name}"], env=mtools_env)
    # trixie's mtools-based installer: it writes ldlinux.sys/ldlinux.c32 and the partition's boot sector.
    installer = work / "syslinux"
    installer.write_bytes(pkgs.read("usr/bin/syslinux"))
    installer.chmod(0o755)
    run([str(installer), "--offset", str(PARTITION_START * SECTOR), "--install", str(raw)], env=mtools_env)
    run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(output)])


def sha256_file(path):
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_image(image, checksum):
    if not (image.is_file() and checksum.is_file()):
        return False
    recorded = checksum.read_text().split()
    return bool(recorded) and recorded[0] == sha256_file(image)


def parse_args(argv):
    default_cache = os.environ.get("STACKWRIGHT_CACHE") or str(Path.home() / ".cache" / "stackwright")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(default_cache) / "guest-image",
        help="cache directory (default: $STACKWRIGHT_CACHE/guest-image, else ~/.cache/stackwright/guest-image)",
    )
    parser.add_argument("--refresh", action="store_true", help="update the package lists even if they are recent")
    parser.add_argument("--offline", action="store_true", help="use only the cached package lists and packages")
    parser.add_argument("--force", action="store_true", help="rebuild even if the image for this recipe exists")
    return parser.parse_args(argv)


def build(args):
    check_host_tools()
    cache = args.cache.expanduser().resolve()
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        # One build at a time per cache: a second caller waits and then finds the image.
        fcntl.flock(lock, fcntl.LOCK_EX)
        apt = PrivateApt(cache / "apt")
        apt.setup()
        apt.update(args.refresh, args.offline)
        versions = resolve_packages(apt)
        recipe = {
            "series": IMAGE_SERIES,
            "suite": SUITE,
            "script_sha256": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
            "guest_scripts_sha256": {
                script: hashlib.sha256((GUEST_SCRIPT_DIR / script).read_bytes()).hexdigest()
                for script in sorted(GUEST_SCRIPTS.values())
            },
            "packages": versions,
        }
        recipe_hash = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
        version = f"{IMAGE_SERIES}-{recipe_hash[:12]}"
        image = cache / f"{IMAGE_NAME}-{version}.qcow2"
        checksum = image.with_name(image.name + ".sha256")
        if not args.force and cached_image(image, checksum):
            log(f"up to date for this recipe: {image.name}")
            return image

        started = time.monotonic()
        pkgs = PackageFiles()
        paths = []
        for package, package_version in versions.items():
            path = deb_path(debs, package, package_version)
            if not path.exists() and args.offline:
                raise BuildError(f"--offline but {path.name} is not in the cache")
            paths.append(apt.download(package, package_version, debs))
            pkgs.add_deb(paths[-1])
        vmlinuz, release, modules = kernel_parts(pkgs)
        log(f"kernel {release}; modules loaded at boot: {', '.join(name for name, _ in modules) or 'none'}")
        with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
            # In the cache, not /tmp: the build runs programs from here and /tmp may be noexec.
            work = Path(tmp)
            initrd = build_initramfs(pkgs, modules, work)
            build_disk(work, pkgs, vmlinuz, initrd, work / "image.qcow2")
            digest = sha256_file(work / "image.qcow2")
            (work / "image.qcow2").replace(image)
        checksum.write_text(f"{digest}  {image.name}\n")
        recipe["kernel_release"] = release
        recipe["modules"] = [name for name, _ in modules]
        image.with_name(image.name + ".recipe.json").write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
        latest = cache / f"{IMAGE_NAME}-latest.qcow2"
        with contextlib.suppress(FileNotFoundError):
            latest.unlink()
        latest.symlink_to(image.name)
        # Images and packages of earlier recipes (an old kernel is 35 MB) are not needed again.
        for stale in set(debs.glob("*.deb")) - set(paths):
            stale.unlink()
        for stale in cache.glob(f"{IMAGE_NAME}-{IMAGE_SERIES}-*.qcow2*"):
            if not stale.name.startswith(image.name):
                stale.unlink()
        size = image.stat().st_size
        log(f"built {image.name} ({size / 2**20:.1f} MiB) in {time.monotonic() - started:.1f} s")
        return image


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        image = build(args)
    except BuildError as error:
        log(f"error: {error}")
        return 1
    print(image)
    return 0
