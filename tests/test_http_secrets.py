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

pytestmark = pytest.mark.probe("secrets")

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
            with HttpBackend().load(Path("remote"), opts) as s:  # no file: no inputs
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


def leaked_parts(secret: str, text: str) -> list[str]:
    """The secret, or any prefix of 8 characters or more of it, found in ``text``."""
    return [secret[:k] for k in range(len(secret), 7, -1) if secret[:k] in text]


CUT_TOKEN = "supersecret12x"
"""14 characters: the probe's token, cut after 13 of them by the excerpt."""


def test_a_token_cut_by_the_excerpt_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe: the error excerpt was cut at 200 characters before the secret was removed, so
    ``Bearer supersecret12`` (13 of 14 characters) reached the report; every cut position."""
    monkeypatch.setenv(VAR, CUT_TOKEN)
    with fault_server() as (url, _):
        for pad in range(200 - len("Bearer ") - len(CUT_TOKEN), 200 - len("Bearer ") + 1):
            opts = {
                "endpoint": url,
                "protocol": "template",
                "path": f"/echo-cut/{pad}",
                "template": "{}",
                "token_env": VAR,
            }
            with HttpBackend().load(Path("remote"), opts) as s:
                with pytest.raises(InferenceError) as err:
                    s.bind([])()
            line = err.value.one_line()
            assert not leaked_parts(CUT_TOKEN, line), (pad, line)
            assert not line.rstrip(". )").endswith(CUT_TOKEN[:4]), (pad, line)


def test_secret_prefixes_are_scrubbed() -> None:
    s = Secret(CUT_TOKEN)
    assert s.scrub("Bearer supersecret12") == "Bearer ***"  # cut at the end of a text
    assert s.scrub("x supersecre y") == "x *** y"  # 10 characters, anywhere
    assert s.scrub("a super") == "a ***"  # 5 characters where the text was cut
    assert s.scrub("super b") == "super b"  # a short prefix mid-text is just a word


def test_url_user_info_and_query_are_used(faults: str) -> None:
    """``http://user:password@host/?api_key=KEY``: the user info is sent as HTTP Basic and the
    query with every request (the gateway answers 200 only with both); the report's endpoint,
    the options recorded and every error hold neither."""
    from tests.http_fault_server import GATE_KEY, GATE_PASSWORD, GATE_USER

    host = faults.removeprefix("http://")
    url = f"http://{GATE_USER}:{GATE_PASSWORD}@{host}/?api_key={GATE_KEY}"
    opts = {"endpoint": url, "protocol": "template", "path": "/gate", "template": "{}"}
    with HttpBackend().load(Path("remote"), opts) as s:
        s.bind([])()
        run = run_network_scenario(s, [], short_scenario())
        texts = [run.http.model_dump_json(), s.describe().model_dump_json(), repr(s.options)]
    assert run.http.error_rate == 0 and run.http.auth == "basic"
    assert run.http.endpoint == faults + "/"
    wrong = url.replace(GATE_KEY, GATE_KEY[::-1])
    with HttpBackend().load(Path("remote"), {**opts, "endpoint": wrong}) as s:
        with pytest.raises(InferenceError, match="http-4xx") as info:
            s.bind([])()
    texts.append(info.value.one_line())
    for text in texts:
        for secret in (GATE_PASSWORD, GATE_KEY, GATE_KEY[::-1]):
            assert not leaked_parts(secret, text), text


def test_url_query_reaches_every_kserve_request(add_server: BackgroundServer) -> None:
    """The probe: ``http://host/?api_key=abc`` asked for ``/?api_key=abc/v2/health/ready``."""
    with HttpBackend().load(Path("add"), {"endpoint": add_server.url + "/?api_key=abcdefgh"}) as s:
        (y, _) = s.bind(add_feeds())()
    assert y.shape == (1, 4)


def test_user_info_with_a_bearer_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, SECRET)
    opts = {"endpoint": f"http://u:{SECRET}@127.0.0.1:1/", "token_env": VAR}
    with pytest.raises(InvalidOptionError) as info:
        HttpBackend().load(Path("m"), opts)
    assert "user info" in info.value.one_line() and SECRET not in info.value.one_line()


def test_nothing_a_run_writes_holds_the_url_credentials(tmp_path: Path) -> None:
    """The probe's F7: ``tool.argv`` kept the URL's password and ``api_key`` in every report and
    in ``show --json``. Every file and stream of a run and of ``show`` is searched for each
    secret and every prefix of 8 characters or more of it."""
    from tests.helpers import tp

    password, key = "pw-Run-Secret-5xQ", "key-Run-Secret-8zR"
    out = tmp_path / "results"
    with BackgroundServer(load_repository(["mlp-tiny"]), ServerConfig(port=0)) as srv:
        host = srv.url.removeprefix("http://")
        url = f"http://user:{password}@{host}/?api_key={key}"
        run = tp(
            "run", "-m", "mlp-tiny", "--endpoint", url, "-s", "single-stream",
            "--min-queries", "20", "--min-duration", "0.1", "--warmup-duration", "0",
            "--idle-s", "0", "--out", str(out), "--json",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
    show = tp("show", str(out), "--json")
    assert show.returncode == 0, show.stderr
    texts = [run.stdout, run.stderr, show.stdout, show.stderr]
    texts += [f.read_bytes().decode("latin-1") for f in sorted(out.rglob("*")) if f.is_file()]
    assert len(texts) >= 6  # the report and its samples
    for text in texts:
        for secret in (password, key):
            assert not leaked_parts(secret, text)
    assert "api_key=***" in show.stdout  # argv says a key was given, not which
