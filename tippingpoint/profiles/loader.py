"""Reading profile TOML files: built-ins first, then user files, which override by name.

A profile file holds tables named ``[<kind>.<name>]`` (kinds: device, cloud, network, energy,
workload); egress tiers are ``[[cloud.<name>.egress_tiers]]``. A workload file passed by path
may instead hold the workload's fields at the top level; its name is then the file's stem.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import ValidationError

from tippingpoint.core.errors import ProfileError, UnknownProfileError
from tippingpoint.profiles.schema import (
    PROFILE_TYPES,
    CloudProfile,
    DeviceProfile,
    EnergyProfile,
    NetworkProfile,
    ProfileBase,
    ProfileKind,
    WorkloadProfile,
)

P = TypeVar("P", bound=ProfileBase)


def builtin_dir() -> Path:
    """The directory of the starter profiles shipped with tippingpoint."""
    return Path(__file__).with_name("data")


def user_dir() -> Path:
    """The per-user profile directory: ``$XDG_CONFIG_HOME/tippingpoint/profiles``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tippingpoint" / "profiles"


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found]  # a dependency on 3.10 only
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
        return data
    except OSError as exc:
        raise ProfileError(
            f"cannot read profile file {path}: {exc.strerror or exc}", "check the path"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path} is not valid TOML: {exc}", "fix the syntax") from None


def _validate(kind: ProfileKind, name: str, data: Any, path: Path) -> ProfileBase:
    if not isinstance(data, dict):
        raise ProfileError(
            f"{path}: '{kind.value}.{name}' is not a table", f"write it as [{kind.value}.{name}]"
        )
    cls = PROFILE_TYPES[kind]
    try:
        return cls.model_validate({**data, "name": name, "origin": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(
            str(p) for p in err["loc"] if p not in ("function-after[check(), Sourced]",)
        )
        msg = str(err["msg"]).removeprefix("Value error, ")
        field_text = f" field '{where}'" if where else ""
        raise ProfileError(
            f"{path}: {kind.value} profile '{name}'{field_text}: {msg}",
            "fix the value in the profile file",
        ) from None


def parse_profile_file(path: Path) -> list[ProfileBase]:
    """Every profile in one TOML file, validated."""
    data = _read_toml(path)
    kinds = {k.value: k for k in ProfileKind}
    out: list[ProfileBase] = []
    for key, table in data.items():
        kind = kinds.get(key)
        if kind is None:
            raise ProfileError(
                f"{path}: unknown table '[{key}]'",
                f"top-level tables are the profile kinds: {', '.join(kinds)}",
            )
        if not isinstance(table, dict):
            raise ProfileError(f"{path}: '{key}' is not a table", f"write [{key}.<name>] tables")
        out.extend(_validate(kind, name, body, path) for name, body in table.items())
    return out


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(p.glob("*.toml")))
        elif p.exists():
            out.append(p)
        else:
            raise ProfileError(f"profile path not found: {p}", "pass an existing file or folder")
    return out


@dataclass(frozen=True)
class ProfileCatalog:
    """All known profiles by kind and name; later files have overridden earlier ones."""

    profiles: Mapping[tuple[ProfileKind, str], ProfileBase] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def names(self, kind: ProfileKind) -> list[str]:
        """The sorted names of the profiles of one kind."""
        return sorted(name for k, name in self.profiles if k is kind)

    def get(self, kind: ProfileKind, name: str) -> ProfileBase:
        """The profile of that kind and name, or an UnknownProfileError listing the choices."""
        found = self.profiles.get((kind, name))
        if found is None:
            known = ", ".join(self.names(kind)) or "none"
            raise UnknownProfileError(
                f"no {kind.value} profile named '{name}'",
                f"known {kind.value} profiles: {known}; add your own with --profiles FILE",
            )
        return found

    def _typed(self, kind: ProfileKind, name: str, cls: type[P]) -> P:
        found = self.get(kind, name)
        assert isinstance(found, cls)
        return found

    def device(self, name: str) -> DeviceProfile:
        """A device profile by name."""
        return self._typed(ProfileKind.DEVICE, name, DeviceProfile)

    def cloud(self, name: str) -> CloudProfile:
        """A cloud profile by name."""
        return self._typed(ProfileKind.CLOUD, name, CloudProfile)

    def network(self, name: str) -> NetworkProfile:
        """A network profile by name."""
        return self._typed(ProfileKind.NETWORK, name, NetworkProfile)

    def energy(self, name: str) -> EnergyProfile:
        """An energy profile by name."""
        return self._typed(ProfileKind.ENERGY, name, EnergyProfile)

    def workload(self, name: str) -> WorkloadProfile:
        """A workload profile by name."""
        return self._typed(ProfileKind.WORKLOAD, name, WorkloadProfile)


def load_catalog(extra: Sequence[Path] = (), include_builtin: bool = True) -> ProfileCatalog:
    """Built-in profiles, then the files in ``extra`` (files or folders), later ones winning."""
    sources = ([builtin_dir()] if include_builtin else []) + list(extra)
    merged: dict[tuple[ProfileKind, str], ProfileBase] = {}
    for path in _files(sources):
        for prof in parse_profile_file(path):
            kind = next(k for k, cls in PROFILE_TYPES.items() if type(prof) is cls)
            merged[(kind, prof.name)] = prof
    return ProfileCatalog(MappingProxyType(merged))


def load_workload(arg: str, catalog: ProfileCatalog) -> WorkloadProfile:
    """A workload by file path (``[workload.<name>]`` or top-level fields) or by profile name."""
    path = Path(arg)
    if not (path.suffix == ".toml" or path.exists()):
        return catalog.workload(arg)
    if not path.is_file():
        raise ProfileError(f"workload file not found: {path}", "check the path given to --workload")
    data = _read_toml(path)
    if "workload" in data and isinstance(data["workload"], dict):
        tables = data["workload"]
        if len(tables) != 1:
            raise ProfileError(
                f"{path} holds {len(tables)} workloads", "keep one [workload.<name>] per file"
            )
        name, body = next(iter(tables.items()))
    else:
        name, body = path.stem, data
    prof = _validate(ProfileKind.WORKLOAD, name, body, path)
    assert isinstance(prof, WorkloadProfile)
    return prof
