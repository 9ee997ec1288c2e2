"""TLS: the reference server serves HTTPS with a self-signed certificate made by openssl; the
client verifies certificates by default (and so refuses it), and turning verification off is
explicit and recorded in the report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.http_helpers import add_feeds, self_signed, short_scenario, write_add_model
from tippingpoint.backends.http import HttpBackend
from tippingpoint.backends.http.client import EndpointError
from tippingpoint.harness.network import run_network_scenario
from tippingpoint.server.app import ServerConfig
from tippingpoint.server.background import BackgroundServer
from tippingpoint.server.repository import load_repository

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def test_https_verification_on_by_default_and_recorded_when_off(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    model = write_add_model(tmp_path / "add.onnx")
    cfg = ServerConfig(port=0, tls_cert=cert, tls_key=key)
    with BackgroundServer(load_repository([str(model)]), cfg) as srv:
        assert srv.url.startswith("https://")
        with pytest.raises(EndpointError) as info:
            HttpBackend().load(model, {"endpoint": srv.url})
        assert "Certificate" in info.value.one_line() or "SSL" in info.value.one_line()
        with HttpBackend().load(model, {"endpoint": srv.url, "tls_verify": False}) as s:
            run = run_network_scenario(s, add_feeds(), short_scenario())
            assert s.describe().options["tls_verify"] is False
    assert run.http.tls_verify is False
    assert run.http.error_rate == 0 and run.http.successes >= 60
