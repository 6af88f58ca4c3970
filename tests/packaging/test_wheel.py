"""The construct as a package: build the wheel, install it in a fresh venv, and synthesize a CDK
app of one's own outside this repository with it (an inline one, and examples/own_cdk_app.py).

Offline: the wheel is built with the repository venv's pinned setuptools (no build isolation),
and the fresh venv sees the repository venv's site-packages through a .pth file for aws-cdk-lib
and constructs, so nothing is downloaded. Only a plain path is added that way: the repository's
editable install (a finder hooked in by its own .pth) is not active in the fresh venv, which
imports ecs_drain_hook from the wheel alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from infra import QUIET_NODE

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
# What the package is built from (and nothing else of the repository).
SOURCES = ("pyproject.toml", "README.md", "infra", "lambda")
CACHES = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", "*.egg-info"
)


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=CACHES)
        else:
            shutil.copy2(path, source / name)
    dist = tmp_path_factory.mktemp("dist")
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        dist,
        source,
        cwd=source,
    )
    (built,) = dist.glob("ecs_drain_hook-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    root = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", root, cwd=root)
    python = root / "bin" / "python"
    site = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root)
        .strip()
        .splitlines()[-1]
    )
    # aws-cdk-lib, constructs and their dependencies from the repository venv, offline.
    (site / "repo_venv_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", wheel, cwd=root)
    return root


def test_wheel_ships_the_construct_the_lambda_and_the_asl(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "ecs_drain_hook/__init__.py",
        "ecs_drain_hook/construct.py",
        "ecs_drain_hook/py.typed",
        "ecs_drain_hook/state_machine/drain_loop.asl.json",
        "ecs_drain_hook/runtime/drain_hook/handler.py",
        "ecs_drain_hook/runtime/drain_hook/settings.py",
        "ecs_drain_hook/runtime/drain_hook/contract.py",
    ):
        assert required in names, required
    # The repository's own app is not part of the package, nor are tests or caches.
    assert not [
        n for n in names if n.startswith(("infra/", "lambda/", "tests/", "ecs_drain_hook/stacks"))
    ]
    assert "ecs_drain_hook/app.py" not in names and "ecs_drain_hook/config.py" not in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # Every Lambda file of the repository is in the wheel.
    for path in (REPO / "lambda").rglob("*.py"):
        if "__pycache__" not in path.parts:
            relative = path.relative_to(REPO / "lambda").as_posix()
            assert f"ecs_drain_hook/runtime/{relative}" in names, relative
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert any("aws-cdk-lib" in r for r in requires) and any("constructs" in r for r in requires)


def test_fresh_venv_imports_the_package_from_the_wheel(venv: Path) -> None:
    out = run(
        venv / "bin" / "python",
        "-c",
        textwrap.dedent(
            """
            import json
            from importlib import metadata
            from packaging.requirements import Requirement
            import ecs_drain_hook
            from ecs_drain_hook import EcsDrainHook, Tunables, SettingsError, HookTiming
            from ecs_drain_hook.package_files import asl_path, lambda_code_dir
            unmet = [
                r for r in metadata.requires("ecs-drain-hook")
                if not Requirement(r).specifier.contains(metadata.version(Requirement(r).name))
            ]
            print(json.dumps({
                "package": ecs_drain_hook.__file__,
                "asl": str(asl_path()),
                "lambda": str(lambda_code_dir()),
                "unmet": unmet,
            }))
            """
        ),
        cwd=venv,
    )
    found = json.loads(out.strip().splitlines()[-1])
    for key in ("package", "asl", "lambda"):
        assert found[key].startswith(str(venv)), found
    assert found["unmet"] == []


APP = textwrap.dedent(
    """
    import aws_cdk as cdk
    from aws_cdk import aws_autoscaling as autoscaling, aws_ec2 as ec2, aws_ecs as ecs
    from ecs_drain_hook import EcsDrainHook, Tunables

    try:
        import infra  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("the repository's infra package leaked into the user's app")

    app = cdk.App()

    imported = cdk.Stack(app, "Imported")
    vpc = ec2.Vpc.from_vpc_attributes(
        imported, "Vpc", vpc_id="vpc-12345678", availability_zones=["eu-west-1a"],
        public_subnet_ids=["subnet-12345678"], public_subnet_route_table_ids=["rtb-12345678"],
    )
    EcsDrainHook(
        imported, "DrainHook",
        cluster=ecs.Cluster.from_cluster_attributes(
            imported, "Cluster", cluster_name="prod", vpc=vpc
        ),
        auto_scaling_groups=[
            autoscaling.AutoScalingGroup.from_auto_scaling_group_name(imported, "G", "prod-asg")
        ],
        tunables=Tunables(max_drain_seconds=3 * 3600),
    )

    owned = cdk.Stack(app, "Owned")
    vpc = ec2.Vpc.from_vpc_attributes(
        owned, "Vpc", vpc_id="vpc-12345678", availability_zones=["eu-west-1a"],
        public_subnet_ids=["subnet-12345678"], public_subnet_route_table_ids=["rtb-12345678"],
    )
    cluster = ecs.Cluster(owned, "Cluster", vpc=vpc)
    group = autoscaling.AutoScalingGroup(
        owned, "Group", vpc=vpc, instance_type=ec2.InstanceType("t4g.small"),
        machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.ARM),
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
    )
    provider = ecs.AsgCapacityProvider(owned, "Provider", auto_scaling_group=group)
    cluster.add_asg_capacity_provider(provider)
    EcsDrainHook(owned, "DrainHook", cluster=cluster, auto_scaling_groups=[group])

    app.synth()
    """
)


def synthesize_outside(venv: Path, app_dir: Path, script: str) -> Path:
    """Run a CDK app's script with the fresh venv's Python, as the CDK CLI would run it; the
    output folder."""
    outdir = app_dir / "cdk.out"
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    # What the CDK CLI passes to an app: the output folder and the context (its cdk.json's).
    env |= {"CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context)}
    for name, value in QUIET_NODE.items():
        env.setdefault(name, value)
    run(venv / "bin" / "python", script, cwd=app_dir, env=env)
    return outdir


def test_a_cdk_app_outside_the_repository_synthesizes_with_the_wheel(
    venv: Path, tmp_path: Path
) -> None:
    app_dir = tmp_path / "my-cdk-app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(APP)
    outdir = synthesize_outside(venv, app_dir, "app.py")

    def warnings(stack: str) -> list[str]:
        metadata = json.loads((outdir / f"{stack}.metadata.json").read_text())
        return [
            json.dumps(e["data"])
            for es in metadata.values()
            for e in es
            if e["type"] == "aws:cdk:warning"
        ]

    assert warnings("Imported") == []
    (warning,) = warnings("Owned")
    assert "ecs-managed-draining-termination-hook" in warning
    for stack in ("Imported", "Owned"):
        template = json.loads((outdir / f"{stack}.template.json").read_text())
        types = {r["Type"] for r in template["Resources"].values()}
        assert {"AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"} <= types
        assert "AWS::CloudWatch::Dashboard" in types
        # The Lambda asset is the wheel's runtime folder: only the Lambda code.
        assets = json.loads((outdir / f"{stack}.assets.json").read_text())
        (asset,) = [a for a in assets["files"].values() if a["source"].get("packaging") == "zip"]
        folder = outdir / asset["source"]["path"]
        assert sorted(p.name for p in folder.iterdir()) == ["drain_hook"]
        assert (folder / "drain_hook" / "handler.py").is_file()
        assert not [p for p in folder.rglob("*") if "__pycache__" in p.parts]


def test_the_wheel_installs_the_ecs_drain_hook_command(wheel: Path, venv: Path) -> None:
    """The console script comes with the package and runs from the fresh venv alone."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"ecs_drain_hook/cli/main.py", "ecs_drain_hook/console.py"} <= names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "ecs-drain-hook = ecs_drain_hook.cli.main:main" in text
    command = venv / "bin" / "ecs-drain-hook"
    assert command.is_file()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    out = run(command, "--help", cwd=venv, env=env)
    assert "usage: ecs-drain-hook" in out and "status" in out and "release" in out
    out = run(command, "release", "--help", cwd=venv, env=env)
    assert "--result {continue,abandon}" in out


EXAMPLE = REPO / "examples" / "own_cdk_app.py"
# The outputs EcsDrainHook(outputs=True) adds; in a stack of one's own each key is the
# construct's path, the output's id and CDK's hash.
CONSTRUCT_OUTPUTS = (
    "FunctionName",
    "StateMachineArn",
    "IntakeQueueUrl",
    "DeadLetterQueueUrl",
    "DashboardUrl",
)


def test_the_own_app_example_synthesizes_with_the_wheel(venv: Path, tmp_path: Path) -> None:
    """examples/own_cdk_app.py, copied out of the repository, synthesizes offline from the
    installed wheel: the hook on the imported cluster and group, alarms to its topic, and the
    outputs."""
    app_dir = tmp_path / "own-app"
    app_dir.mkdir()
    shutil.copy2(EXAMPLE, app_dir / EXAMPLE.name)
    outdir = synthesize_outside(venv, app_dir, EXAMPLE.name)
    template = json.loads((outdir / "DrainedCluster.template.json").read_text())
    resources = template["Resources"]
    by_type: dict[str, list[str]] = {}
    for logical_id, resource in resources.items():
        by_type.setdefault(resource["Type"], []).append(logical_id)
    for required in (
        "AWS::Lambda::Function",
        "AWS::StepFunctions::StateMachine",
        "AWS::CloudWatch::Dashboard",
        "AWS::SQS::Queue",
    ):
        assert required in by_type, required
    (hook,) = [resources[i]["Properties"] for i in by_type["AWS::AutoScaling::LifecycleHook"]]
    assert hook["AutoScalingGroupName"] == "my-cluster-instances"
    assert json.loads(hook["NotificationMetadata"]) == {"cluster": "my-cluster"}
    (topic_id,) = by_type["AWS::SNS::Topic"]
    alarms = [resources[i]["Properties"] for i in by_type["AWS::CloudWatch::Alarm"]]
    assert alarms and all({"Ref": topic_id} in a["AlarmActions"] for a in alarms)
    keys = list(template["Outputs"])
    for output in CONSTRUCT_OUTPUTS:
        pattern = re.compile(rf"^DrainHook{output}[0-9A-F]{{8}}$")
        assert len([k for k in keys if pattern.match(k)]) == 1, (output, keys)
    metadata = json.loads((outdir / "DrainedCluster.metadata.json").read_text())
    warnings = [e for es in metadata.values() for e in es if e["type"] == "aws:cdk:warning"]
    assert warnings == []
