"""pyproject.toml, environment.yml, README.md and .ci/run agree with each other."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name, where they differ


def _requirement(spec: str) -> tuple[str, str]:
    match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", spec.split(";")[0].strip())
    assert match, spec
    return match.group(1).lower(), match.group(2).replace(" ", "")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_matches_pyproject():
    project = _pyproject()["project"]
    wanted = dict(_requirement(s) for s in project["dependencies"])
    wanted.update(_requirement(s) for s in project["optional-dependencies"]["lab"])
    wanted["python"] = project["requires-python"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    pip_lines = []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip_lines.extend(item["pip"])
        else:
            name, floor = _requirement(item)
            conda[name] = floor
    assert "conda-forge" in env["channels"]
    assert pip_lines == ["-e ."]
    for name, floor in wanted.items():
        conda_name = CONDA_NAMES.get(name, name)
        assert conda_name in conda, f"{conda_name} missing from environment.yml"
        assert conda[conda_name] == floor, f"{conda_name}: {conda[conda_name]} != {floor}"
    extra = set(conda) - {CONDA_NAMES.get(n, n) for n in wanted} - {"pip"}
    assert not extra, f"environment.yml has packages pyproject.toml lacks: {extra}"


def test_dependencies_are_floors_not_pins():
    project = _pyproject()["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs.extend(extra)
    for spec in specs:
        assert "==" not in spec, f"{spec} pins a version; use a floor"


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block, "README.md has no code block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    lab, test = commands
    assert "andersonn-lab lab" in lab and "pip install" in lab
    assert "pytest" in test and "pip install" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci, "the README's test command is not what .ci/run runs"
    for command in commands:  # the torch build is chosen before pip install -e pulls one in
        assert "pip install torch==2.13.0 &&" in command, command
        assert command.index("torch==2.13.0") < command.index("pip install -e")


def test_console_script_is_declared():
    scripts = _pyproject()["project"]["scripts"]
    assert scripts["andersonn-lab"] == "andersonn_lab.cli:main"
