"""Cost profiles (devices, clouds, networks, energy, workloads): TOML data and its loader."""

from tippingpoint.profiles.loader import (
    ProfileCatalog,
    builtin_dir,
    load_catalog,
    load_workload,
    user_dir,
)
from tippingpoint.profiles.schema import (
    CloudProfile,
    DeviceProfile,
    EnergyProfile,
    NetworkProfile,
    ProfileKind,
    Sourced,
    WorkloadProfile,
)

__all__ = [
    "CloudProfile",
    "DeviceProfile",
    "EnergyProfile",
    "NetworkProfile",
    "ProfileCatalog",
    "ProfileKind",
    "Sourced",
    "WorkloadProfile",
    "builtin_dir",
    "load_catalog",
    "load_workload",
    "user_dir",
]
