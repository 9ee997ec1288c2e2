"""``tippingpoint backends``' table shows install hints as written: extras in brackets are
text, not rich markup (``[onnx-gpu]`` used to vanish from the table)."""

from __future__ import annotations

from rich.console import Console

from tippingpoint.backends.registry import BackendListing
from tippingpoint.core.types import Availability
from tippingpoint.reports.table import backends_table


def test_install_hint_keeps_its_bracketed_extra() -> None:
    hint = "pip install 'tippingpoint[llamacpp]' (builds llama.cpp from source)"
    listing = BackendListing(
        name="llama-cpp",
        target="cpu",
        formats=(".gguf",),
        availability=Availability(installed=False, runtime="llama-cpp-python", install_hint=hint),
    )
    console = Console(width=200, record=True, color_system=None)
    console.print(backends_table([listing]))
    text = console.export_text()
    assert "tippingpoint[llamacpp]" in text and "llama-cpp-python" in text
