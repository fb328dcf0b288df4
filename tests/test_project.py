"""The project's promises about itself: README commands, CI, fast imports, the app shell."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    return re.findall(r"^    (python3\.11 -m venv .*)$", (ROOT / "README.md").read_text(), re.M)


def test_readme_starts_with_two_commands_and_ci_runs_the_test_one() -> None:
    start, test = _readme_commands()[:2]
    assert "streamlit run app.py" in start
    assert "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text()


def test_data_commands_do_not_import_tensorflow() -> None:
    code = (
        "import sys, brat.cli, brat.data.scan, brat.data.split, brat.data.download; "
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_pip_install_declares_every_pinned_requirement_and_a_brat_command() -> None:
    """`pip install .` gives a `brat` command and what it needs: every package requirements.txt
    pins is a dependency of the package or of one of its extras (app, download)."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [spec for group in project["optional-dependencies"].values() for spec in group]
    declared = [*project["dependencies"], *extras]
    names = {Requirement(spec).name.lower() for spec in declared}
    pinned = {
        Requirement(line).name.lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert pinned == names
    assert project["scripts"] == {"brat": "brat.cli:main"}
    from brat.cli import main

    assert callable(main)
