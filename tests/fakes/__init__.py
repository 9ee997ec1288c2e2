"""Fakes for hardware absent on build machines, following the kernel's real sysfs layout."""
