"""The host fingerprint: CPU, clocks, memory, OS, runtimes, container and emulation.

Reads files and package metadata only; it never imports a runtime.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tippingpoint import __version__
from tippingpoint.backends.gpuinfo import gpu_info
from tippingpoint.core.redact import redact_argv
from tippingpoint.core.schema import ContainerInfo, HostFingerprint, ToolInfo

RUNTIME_PACKAGES = (
    "numpy",
    "onnxruntime",
    "onnxruntime-gpu",
    "ai-edge-litert",
    "tflite-runtime",
    "torch",
    "aiohttp",
    "nvidia-ml-py",
    "pydantic",
)


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip()
    except OSError:
        return None


def cpu_model(cpuinfo: str | None) -> str | None:
    """The CPU model name from /proc/cpuinfo text (x86 'model name', Arm 'Model'/'CPU part')."""
    if not cpuinfo:
        return None
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in cpuinfo.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == key and v.strip():
                return v.strip()
    return None


def detect_container(
    root: Path = Path("/"), cgroup_text: str | None = None, environ: dict[str, str] | None = None
) -> ContainerInfo:
    """Whether we run in a container, from marker files, cgroup names and environment."""
    env = os.environ if environ is None else environ
    if (root / ".dockerenv").exists():
        return ContainerInfo(detected=True, kind="docker", evidence="/.dockerenv exists")
    if (root / "run/.containerenv").exists():
        return ContainerInfo(detected=True, kind="podman", evidence="/run/.containerenv exists")
    if "KUBERNETES_SERVICE_HOST" in env:
        return ContainerInfo(detected=True, kind="kubernetes", evidence="KUBERNETES_SERVICE_HOST")
    if env.get("container"):
        return ContainerInfo(detected=True, kind=env["container"], evidence="$container")
    text = cgroup_text if cgroup_text is not None else _read(root / "proc/1/cgroup") or ""
    for marker in ("docker", "kubepods", "containerd", "lxc", "libpod"):
        if marker in text:
            return ContainerInfo(detected=True, kind=marker, evidence="/proc/1/cgroup")
    return ContainerInfo(detected=False)


ARCH_FAMILIES = {
    "x86_64": "x86",
    "amd64": "x86",
    "i386": "x86",
    "i686": "x86",
    "aarch64": "arm",
    "arm64": "arm",
    "armv8l": "arm",
    "armv7l": "arm",
    "armv6l": "arm",
}
"""Machine names by instruction-set family: a 32-bit Arm userland on a 64-bit Arm kernel is
native, an aarch64 process on an x86_64 kernel is emulated."""


def detect_emulator(
    exe: str = "/proc/self/exe",
    cpuinfo: str | None = None,
    kernel_arch: str | None = None,
    machine: str | None = None,
) -> str | None:
    """Name of the emulator running this process, or None when native.

    Under qemu-user the guest sees the host kernel: ``/proc/sys/kernel/arch`` names the host's
    architecture while ``uname -m`` (emulated) names the guest's; /proc/cpuinfo describes the
    host CPU unless qemu fakes it too; and the real executable may be qemu itself.
    """
    try:
        target = os.path.realpath(exe)
        if "qemu" in os.path.basename(target):
            return os.path.basename(target)
    except OSError:
        pass
    machine = (machine or platform.machine()).lower()
    karch = (
        kernel_arch if kernel_arch is not None else _read("/proc/sys/kernel/arch") or ""
    ).lower()
    if karch and ARCH_FAMILIES.get(karch, karch) != ARCH_FAMILIES.get(machine, machine):
        return f"qemu-user ({machine} process on a {karch} kernel)"
    info = cpuinfo if cpuinfo is not None else _read("/proc/cpuinfo") or ""
    if machine in ("aarch64", "arm64") and ("vendor_id" in info or "GenuineIntel" in info):
        return "qemu-user (x86 host cpuinfo seen from an aarch64 process)"
    if "QEMU" in info and machine in ("aarch64", "arm64"):
        return "qemu (cpuinfo)"
    return None


def _meminfo_total() -> int | None:
    text = _read("/proc/meminfo")
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _cpu_freqs() -> tuple[float, ...]:
    freqs: list[float] = []
    base = Path("/sys/devices/system/cpu")
    for cpu in sorted(base.glob("cpu[0-9]*"), key=lambda p: int(p.name[3:])):
        khz = _read(cpu / "cpufreq/scaling_cur_freq")
        if khz and khz.isdigit():
            freqs.append(int(khz) / 1000.0)
    if not freqs:
        for line in (_read("/proc/cpuinfo") or "").splitlines():
            if line.startswith("cpu MHz"):
                freqs.append(float(line.split(":")[1]))
    return tuple(freqs)


def _physical_cores(cpuinfo: str | None) -> int | None:
    if not cpuinfo:
        return None
    pairs = set()
    phys = core = None
    for line in cpuinfo.splitlines():
        k, _, v = line.partition(":")
        k = k.strip()
        if k == "physical id":
            phys = v.strip()
        elif k == "core id":
            core = v.strip()
        elif not line.strip() and phys is not None and core is not None:
            pairs.add((phys, core))
            phys = core = None
    if phys is not None and core is not None:
        pairs.add((phys, core))
    return len(pairs) or None


def runtime_versions() -> dict[str, str]:
    """Installed versions of the runtimes and key libraries, from package metadata."""
    out: dict[str, str] = {}
    for pkg in RUNTIME_PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def host_fingerprint() -> HostFingerprint:
    """Fingerprint of this machine and software stack."""
    cpuinfo = _read("/proc/cpuinfo")
    emulator = detect_emulator(cpuinfo=cpuinfo)
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return HostFingerprint(
        hostname_hash=hashlib.sha256(platform.node().encode()).hexdigest()[:16],
        machine=platform.machine(),
        cpu_model=cpu_model(cpuinfo),
        cpu_count_logical=os.cpu_count(),
        cpu_count_physical=_physical_cores(cpuinfo),
        cpu_affinity=affinity,
        cpu_governor=_read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        cpu_freq_mhz=_cpu_freqs(),
        memory_total_bytes=_meminfo_total(),
        os=_os_name(),
        kernel=platform.release(),
        python=sys.version.split()[0],
        container=detect_container(),
        emulated=emulator is not None,
        emulator=emulator,
        runtime_versions=runtime_versions(),
        board=(_read("/proc/device-tree/model") or "").rstrip("\x00") or None,
        gpus=gpu_info(),
    )


def _os_name() -> str:
    text = _read("/etc/os-release") or ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def tool_info(argv: list[str] | None = None) -> ToolInfo:
    """This tool's version and, when run from a git checkout, its commit and dirtiness."""
    root = Path(__file__).resolve().parents[2]
    commit = dirty = None
    if (root / ".git").exists():
        try:
            commit = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            status = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout
            dirty = bool(status.strip())
        except (OSError, subprocess.SubprocessError):
            commit = dirty = None
    return ToolInfo(
        version=__version__,
        git_commit=commit,
        git_dirty=dirty,
        argv=redact_argv(argv if argv is not None else sys.argv),
    )
