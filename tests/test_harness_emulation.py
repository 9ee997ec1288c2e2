"""Emulation detection: an aarch64 process under qemu-user on an x86 host is marked emulated,
whichever /proc/cpuinfo it is shown; native Arm (64- or 32-bit userland) is not."""

from __future__ import annotations

import pytest

from tippingpoint.harness.fingerprint import detect_emulator

X86_CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n"
# what qemu >= 8 may show the guest instead, and what a Raspberry Pi 5 shows natively
ARM_CPUINFO = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"


@pytest.mark.parametrize("cpuinfo", [X86_CPUINFO, ARM_CPUINFO])
def test_aarch64_process_on_x86_kernel_is_emulated(cpuinfo: str) -> None:
    found = detect_emulator("/bin/sh", cpuinfo, kernel_arch="x86_64", machine="aarch64")
    assert found == "qemu-user (aarch64 process on a x86_64 kernel)"


@pytest.mark.parametrize("machine", ["aarch64", "armv7l", "armv8l"])
def test_native_arm_userlands_are_not_emulated(machine: str) -> None:
    assert detect_emulator("/bin/sh", ARM_CPUINFO, kernel_arch="aarch64", machine=machine) is None


def test_x86_cpuinfo_without_kernel_arch_still_detected() -> None:
    # kernels without /proc/sys/kernel/arch: the host cpuinfo gives it away
    found = detect_emulator("/bin/sh", X86_CPUINFO, kernel_arch="", machine="aarch64")
    assert found is not None and found.startswith("qemu-user")


def test_this_machine_is_native() -> None:
    assert detect_emulator() is None
