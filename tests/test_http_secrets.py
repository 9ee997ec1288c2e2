"""The credential never appears in a report, a log line, an error message or any output,
even when a careless server echoes it back."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.http_helpers import add_feeds, fault_server, short_scenario, write_add_model
from tippingpoint.backends.http import HttpBackend
from tippingpoint.backends.http.auth import AuthConfig, AuthKind, Secret, load_secret, public_url
from tippingpoint.backends.http.client import EndpointError
from tippingpoint.core.errors import InferenceError, InvalidOptionError
from tippingpoint.harness.network import run_network_scenario
from tippingpoint.server.app import ServerConfig
from tippingpoint.server.background import BackgroundServer
from tippingpoint.server.repository import load_repository

SECRET = "tp-secret-Zq8vW3kL9xR2"
VAR = "TIPPINGPOINT_TEST_TOKEN"


def test_secret_type_never_prints() -> None:
    s = Secret(SECRET)
    auth = AuthConfig(AuthKind.BEARER, s)
    for text in (str(s), repr(s), repr(auth), str(auth), f"{s}", auth.describe() or ""):
        assert SECRET not in text
    assert auth.headers() == {"Authorization": f"Bearer {SECRET}"}
    assert s.scrub(f"x {SECRET} y") == "x *** y"
    assert AuthConfig(AuthKind.HEADER, s, "X-Api-Key").headers() == {"X-Api-Key": SECRET}
    with pytest.raises(TypeError):
        json.dumps({"a": s})


def test_sources_and_their_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, SECRET + "\n")
    assert load_secret(env=VAR).reveal() == SECRET
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    assert load_secret(file=path).reveal() == SECRET
    monkeypatch.delenv(VAR)
    with pytest.raises(InvalidOptionError, match=VAR):
        load_secret(env=VAR)
    with pytest.raises(InvalidOptionError) as info:
        load_secret(file=tmp_path / "missing")
    assert "missing" in info.value.one_line()


def test_public_url_drops_credentials() -> None:
    assert public_url(f"https://user:{SECRET}@host:8443/v2?key={SECRET}#x") == (
        "https://host:8443/v2"
    )


def test_nothing_leaks_through_a_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(VAR, SECRET)
    token_file = tmp_path / "token"
    token_file.write_text(SECRET)
    model = write_add_model(tmp_path / "add.onnx")
    texts: list[str] = []
    cfg = ServerConfig(port=0, token=Secret(SECRET), access_log=True)
    with BackgroundServer(load_repository([str(model)]), cfg) as srv:
        for source in ({"token_env": VAR}, {"token_file": str(token_file)}):
            opts = {"endpoint": srv.url, **source}
            with HttpBackend().load(model, opts) as s:
                run = run_network_scenario(s, add_feeds(), short_scenario())
                assert run.http.auth == "bearer" and run.http.error_rate == 0
                texts += [
                    run.http.model_dump_json(),
                    s.describe().model_dump_json(),
                    repr(s.auth),
                    repr(s.options),
                ]
        # a wrong token fails at load with a message that names neither token
        monkeypatch.setenv(VAR, "wrong-" + SECRET[::-1])
        with pytest.raises(EndpointError) as info:
            HttpBackend().load(model, {"endpoint": srv.url, "token_env": VAR})
        texts.append(info.value.one_line())
        assert "credentials" in info.value.one_line()
    monkeypatch.setenv(VAR, SECRET)
    with fault_server() as (url, _):
        for extra in ({}, {"auth_header": "X-Api-Key"}):
            opts = {
                "endpoint": url,
                "protocol": "template",
                "path": "/echo",
                "template": "{}",
                "token_env": VAR,
                **extra,
            }
            with HttpBackend().load(model, opts) as s:
                with pytest.raises(InferenceError) as err:
                    s.bind([])()
                texts.append(err.value.one_line())
                assert "***" in err.value.one_line()  # the echoed secret, scrubbed
                run = run_network_scenario(s, [], short_scenario())
                texts.append(run.http.model_dump_json())
    out, errout = capfd.readouterr()
    texts += [out, errout, caplog.text]
    for text in texts:
        assert SECRET not in text


def test_reports_on_disk_hold_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tippingpoint.cli import main

    monkeypatch.setenv(VAR, SECRET)
    cfg = ServerConfig(port=0, token=Secret(SECRET))
    out = tmp_path / "results"
    with BackgroundServer(load_repository(["mlp-tiny"]), cfg) as srv:
        code = main(
            [
                "run", "-m", "mlp-tiny", "--endpoint", srv.url, "--opt", f"http.token_env={VAR}",
                "-s", "single-stream", "-s", "server", "--rate", "50", "--min-queries", "20",
                "--min-duration", "0.1", "--warmup-duration", "0", "--out", str(out), "--json",
            ]
        )  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    files = sorted(out.iterdir())
    assert len([f for f in files if f.suffix == ".json"]) == 2
    for f in files:
        assert SECRET.encode() not in f.read_bytes()
    for f in (f for f in files if f.suffix == ".json"):
        assert json.loads(f.read_text())["http"]["auth"] == "bearer"
    assert SECRET not in printed.out + printed.err
