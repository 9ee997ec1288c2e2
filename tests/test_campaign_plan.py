"""Campaign plans: the cells a plan expands to, and every mistake as one line (exit 2) before
anything runs. No Ray here: validation needs none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tippingpoint.campaign.plan import PlanError, load_plan, planned_cells, run_request
from tippingpoint.core.kinds import ScenarioKind

from .helpers import assert_one_line, tp

PLAN = """
[campaign]
name = "edge-vs-cloud"

[defaults]
quick = true
min_queries = 20

[endpoints.cloud]
serve = "cloud:server"

[devices.edge-a]
kind = "device:edge-a"

[[devices.edge-a.runs]]
models = ["mlp-tiny"]
scenarios = ["single-stream", "offline"]
batch_sizes = [1, 4]

[[devices.edge-a.runs]]
models = ["mlp-tiny"]
endpoint = "cloud"
scenarios = ["single-stream", "server"]
rate_qps = 50
min_queries = 30

[devices.edge-b]
kind = "device:edge-b"

[[devices.edge-b.runs]]
models = ["mlp-tiny"]
scenarios = ["single-stream"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def test_a_plan_expands_into_its_cells_in_plan_order(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, PLAN))
    cells = planned_cells(plan)
    assert [c.cell_id for c in cells] == [
        "edge-a/mlp-tiny/single-stream/onnxruntime-fp32",
        "edge-a/mlp-tiny/offline-b1/onnxruntime-fp32",
        "edge-a/mlp-tiny/offline-b4/onnxruntime-fp32",
        "edge-a/mlp-tiny/single-stream/http@cloud-fp32",
        "edge-a/mlp-tiny/server-50qps/http@cloud-fp32",
        "edge-b/mlp-tiny/single-stream/onnxruntime-fp32",
    ]
    assert {c.kind for c in cells if c.device == "edge-b"} == {"device:edge-b"}


def test_a_cell_becomes_the_one_cell_request_of_tippingpoint_run(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, PLAN))
    server = next(c for c in planned_cells(plan) if c.scenario is ScenarioKind.SERVER)
    req = run_request(plan, server, "http://10.0.0.5:8000")
    assert req.endpoint == "http://10.0.0.5:8000" and req.backends == ()
    assert req.scenarios == (ScenarioKind.SERVER,) and req.network.rate_qps == 50
    assert req.quick and req.min_queries == 30  # the run's own key wins over [defaults]
    local = planned_cells(plan)[2]
    req = run_request(plan, local, None)
    assert req.backends == ("onnxruntime",) and req.batch_sizes == (4,)
    assert req.min_queries == 20 and req.endpoint is None


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (
            ('models = ["mlp-tiny"]\nscenarios', 'modls = ["mlp-tiny"]\nscenarios'),
            ("unknown key 'devices.edge-a.runs.0.modls'", "sample plan"),
        ),
        (
            ('endpoint = "cloud"', 'endpoint = "gpu"'),
            ("endpoint 'gpu' is not defined", "add [endpoints.gpu]"),
        ),
        (("rate_qps = 50\n", ""), ("server scenario needs a target rate", "rate_qps")),
        (
            ('serve = "cloud:server"', 'serve = "cloud:server"\nurl = "http://x:1"'),
            ("needs exactly one of 'serve' and 'url'",),
        ),
        (
            (
                'models = ["mlp-tiny"]\nscenarios = ["single-stream"]\n',
                'models = ["no-such-model"]\nscenarios = ["single-stream"]\n',
            ),
            ("unknown model 'no-such-model'", "known models"),
        ),
        (("devices.edge-b", "devices.'edge b'"), ("device id 'edge b' is not a plain name",)),
        (
            ("batch_sizes = [1, 4]", 'batch_sizes = [1, 4]\nnetwork = "lte"'),
            ("network profiles are not part of a campaign run yet",),
        ),
        (
            ("batch_sizes = [1, 4]", "batch_sizes = [1, 1]"),
            ("cell edge-a/mlp-tiny/offline-b1/onnxruntime-fp32 is planned twice",),
        ),
        (
            ('scenarios = ["single-stream"]\n"""', 'scenarios = ["server"]\n"""'),
            ("need a network backend", "endpoint = NAME"),
        ),
    ],
)
def test_plan_mistakes_are_one_line_with_the_fix(
    tmp_path: Path, change: tuple[str, str], needles: tuple[str, ...]
) -> None:
    old, new = change
    text = (PLAN + '"""').replace(old, new).removesuffix('"""')
    assert text != PLAN
    with pytest.raises(PlanError) as err:
        load_plan(write(tmp_path, text))
    assert err.value.exit_code == 2
    for needle in needles:
        assert needle in err.value.one_line()


def test_the_cli_refuses_a_bad_plan_before_anything_runs(tmp_path: Path) -> None:
    plan = write(tmp_path, PLAN.replace("[defaults]", "[defaults]\nfast = true"))
    out = tmp_path / "tree"
    p = tp("campaign", "run", str(plan), "-o", str(out))
    assert_one_line(p, 2, "unknown key 'defaults.fast'")
    assert not out.exists()


def test_without_ray_a_served_endpoint_needs_a_url(tmp_path: Path) -> None:
    out = tmp_path / "tree"
    p = tp("campaign", "run", str(write(tmp_path, PLAN)), "--local", "edge-a", "-o", str(out))
    assert_one_line(p, 2, "endpoint 'cloud' is served on a node", "--endpoint cloud=URL")
    assert not out.exists()
    p = tp("campaign", "run", str(write(tmp_path, PLAN)), "--local", "edge-z", "-o", str(out))
    assert_one_line(p, 2, "no device 'edge-z'", "edge-a, edge-b")


def test_a_node_that_does_not_look_as_expected_is_refused(tmp_path: Path) -> None:
    other = (
        "x86_64" if "aarch64" in subprocess.check_output(["uname", "-m"], text=True) else "aarch64"
    )
    text = PLAN.replace(
        'kind = "device:edge-b"', f'kind = "device:edge-b"\nexpect = {{ machine = "{other}" }}'
    )
    p = tp(
        "campaign",
        "run",
        str(write(tmp_path, text)),
        "--local",
        "edge-b",
        "-o",
        str(tmp_path / "t"),
    )
    assert_one_line(p, 2, "device edge-b (this machine)", f"the plan expects {other}")
    assert not (tmp_path / "t").exists()  # refused before the folder was touched


def test_help_and_check_do_not_import_ray(tmp_path: Path) -> None:
    code = (
        "import sys, io, contextlib\n"
        "from tippingpoint.cli import main\n"
        "quiet = io.StringIO()\n"
        "with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):\n"
        "    a = main(['--help']); b = main(['campaign', '--help'])\n"
        f"    c = main(['campaign', 'check', {str(tmp_path)!r}])\n"
        "print(a, b, c, 'ray' in sys.modules)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "0 0 2 False", p.stdout + p.stderr


def test_the_readme_sample_plan_is_valid() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Campaigns across machines (Ray)", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    from tippingpoint.campaign.plan import parse_plan, tomllib

    plan = parse_plan(tomllib.loads(block), "README")
    cells = planned_cells(plan)
    assert len(cells) == 2 * 2 * 3 + 2  # 2 variants x 2 backends x (ss + 2 batches) + 2 http
    assert {c.endpoint for c in cells} == {None, "t4"}
