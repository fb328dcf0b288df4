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
