"""The project's promises about itself: the README's two commands, and CI running the test command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    block = re.search(r"## Two commands.*?```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_has_exactly_the_two_commands():
    serve, test = readme_commands()
    assert serve.startswith("python3 -m venv .venv") and serve.endswith("hub serve")
    assert test.startswith("python3 -m venv .venv") and test.endswith("pytest")


def test_ci_runs_the_readmes_test_command_verbatim():
    _, test = readme_commands()
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_every_plugin_folder_is_its_own_distribution_with_an_entry_point():
    requirements = (ROOT / "tests" / "requirements.txt").read_text()
    for folder in sorted((ROOT / "plugins").glob("*/")):
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        assert project["name"].startswith("hub-")
        assert project["entry-points"]["hub"], f"{folder.name} declares no hub entry point"
        assert f"-e ./plugins/{folder.name}" in requirements, f"the test command does not install {folder.name}"


def test_the_core_depends_on_no_provider_sdk():
    deps = " ".join(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]).lower()
    for sdk in ("stripe", "twilio", "google-api-python-client", "google-auth", "docusign"):
        assert sdk not in deps
    for path in (ROOT / "hub").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+(stripe|twilio|googleapiclient|google\.auth)\b",
                             path.read_text(), re.M), path
