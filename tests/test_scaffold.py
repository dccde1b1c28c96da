"""``hub plugin new``: the generated plugin, installed into a fresh virtual environment beside the core, is
discovered, loads, and passes its own tests (the conformance suite among them) as generated."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.scaffold import render


def test_the_scaffold_refuses_a_bad_slug_or_a_folder_in_use(tmp_path):
    with pytest.raises(ValueError, match="no provider slug"):
        render("Acme-Books", tmp_path / "x")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("mine")
    result = CliRunner().invoke(main, ["plugin", "new", "acme", "--path", str(tmp_path / "used")])
    assert result.exit_code == 1 and "not empty" in result.output


@pytest.mark.slow
def test_a_new_plugin_installs_is_discovered_loads_and_passes_its_own_tests(tmp_path):
    target = tmp_path / "src" / "acme_books"
    result = CliRunner().invoke(main, ["plugin", "new", "acme_books", "--path", str(target)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (target / "hub_acme_books").iterdir()} >= {
        "plugin.py", "client.py", "mappers.py", "webhooks.py", "simulator.py", "testing.py"}

    # A fresh environment, with nothing installed in it: the core (with pip, the build backend and everything
    # else the suite has) is what this test runs on, seen through a .pth file as a system's site-packages are.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_packages = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        check=True, capture_output=True, text=True).stdout.strip())
    (site_packages / "integration_hub_core.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    # Built into a wheel and installed (not editable: the wheel must carry the plugin), with the build backend
    # at hand instead of one fetched into an isolated build environment.
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(target)],
                   check=True, timeout=600)
    assert (site_packages / "hub_acme_books" / "plugin.py").exists()

    env = {**os.environ, "HUB_HOME": str(tmp_path / "home"), "HUB_PLUGINS": "acme_books"}
    listed = subprocess.run([python, "-m", "hub", "plugins"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0] == "acme_books (hub-acme-books 0.1.0)", listed.stdout
    assert "  acme_books: Acme Books (accounting, auth api_key)" in listed.stdout

    # As its author runs them: pytest loads the kit through its entry point. Two installed pytest plugins the
    # plugin's tests never use stay off (each imports a large library at start-up).
    tests = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:faker", "-p",
                            "no:schemathesis", "-ra"], cwd=target, env=env, capture_output=True, text=True, timeout=900)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and " failed" not in tests.stdout
    assert "hub/testing/conformance.py" in tests.stdout  # its skips name the suite's checks that do not apply
