"""Where brat keeps its work, and which model is active.

- `$BRAT_HOME` (default `~/.brat`) holds the app's training runs (`runs/NAME/`) and the pointer
  to the active model (`active-model`, one line: the model folder's path).
- The active model is `$BRAT_MODEL` when set, else the promoted one, else the shipped model.
- The default dataset folder of the app is `$BRAT_DATA`, else `data` under `[brat]` in
  `.streamlit/secrets.toml`, else the bundled demo samples (`SAMPLES`, sixteen slices).
- The app reads datasets only inside its data roots: `$BRAT_DATA_ROOTS` (folders separated by
  the system's path separator, `:` on Linux), else `data_roots` (a list) under `[brat]`, else the
  default dataset folder and the bundled samples. It refuses a folder of more than
  `$BRAT_MAX_FILES` files (default 200,000). The command line is not restricted.
- `admin_password` under `[brat]` in `.streamlit/secrets.toml` restricts the app's training,
  promotion and dataset pages to whoever types it (or, with Streamlit's login configured under
  `[auth]`, to a logged-in user); with neither set, they are open to every user.
- The audit trail (`brat.audit`: one line per analysis in `$BRAT_HOME/audit/`) is on unless
  `$BRAT_AUDIT` is 0, false, off or no (or, with `$BRAT_AUDIT` unset, `audit = false` under
  `[brat]`). It logs file names only when `$BRAT_AUDIT_FILE_NAMES` is true or 1 (or
  `audit_file_names = true`): a file name may name the patient.

Promotion rewrites the pointer with one rename, so a reader sees the old or the new model folder,
never a mix; model folders themselves are written once and not changed afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# The model the app and commands use unless told otherwise.
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "mobilenetv2-brain-mri"
# Sixteen licensed slices that ship with the code, so a fresh clone has something to show.
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
# The pointer to the promoted model in $BRAT_HOME (`brat.model_folder.promote` writes it).
ACTIVE_MODEL_FILE = "active-model"


def home() -> Path:
    return Path(os.environ.get("BRAT_HOME") or Path.home() / ".brat").expanduser()


def runs_dir() -> Path:
    """Where the app's training runs write their model folders."""
    return home() / "runs"


def default_data_dir() -> Path | None:
    """The dataset folder the app opens first, or None when none is configured."""
    value = os.environ.get("BRAT_DATA")
    if not value:
        value = _secrets_setting("data")
    return Path(value).expanduser() if value else None


def data_roots() -> list[Path]:
    """The folders the app may read datasets from (see the module docstring)."""
    value = os.environ.get("BRAT_DATA_ROOTS")
    if value:
        return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]
    configured = next(_secrets_values("data_roots"), None)
    if configured:
        parts = [configured] if isinstance(configured, str) else list(configured)
        return [Path(str(part)).expanduser() for part in parts]
    default = default_data_dir()
    return [default, SAMPLES] if default else [SAMPLES]


def max_files() -> int:
    """The most files the app walks in one dataset folder ($BRAT_MAX_FILES, default 200,000)."""
    from brat.data.access import MAX_FILES

    value = os.environ.get("BRAT_MAX_FILES", "")
    return int(value) if value.strip().isdigit() else MAX_FILES


def admin_password() -> str | None:
    """The password that unlocks training and promotion in the app, or None (unrestricted)."""
    return _secrets_setting("admin_password")


def promoted_model() -> Path | None:
    """The model folder promoted to be the app's model, if any (and it still exists)."""
    try:
        text = (home() / ACTIVE_MODEL_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return Path(text) if text and Path(text).is_dir() else None


def active_model_path() -> Path:
    """$BRAT_MODEL, else the promoted model, else the shipped one."""
    if os.environ.get("BRAT_MODEL"):
        return Path(os.environ["BRAT_MODEL"])
    return promoted_model() or SHIPPED_MODEL


def audit_enabled() -> bool:
    """Whether analyses are logged to the audit trail (default: yes)."""
    return _flag("BRAT_AUDIT", "audit", default=True)


def audit_file_names() -> bool:
    """Whether the audit trail logs each scan's file name (default: no, as it may name the
    patient)."""
    return _flag("BRAT_AUDIT_FILE_NAMES", "audit_file_names", default=False)


def _flag(variable: str, key: str, *, default: bool) -> bool:
    """A yes/no setting: the environment variable when set, else the secrets' key, else
    `default`. 0, false, off and no (any case) mean no; any other value means yes."""
    value = os.environ.get(variable) or next(_secrets_values(key), None)
    if value is None:
        return default
    return str(value).strip().lower() not in {"0", "false", "off", "no", ""}


def _secrets_setting(key: str) -> str | None:
    return next((str(value) for value in _secrets_values(key) if value), None)


def _secrets_values(key: str) -> Iterator[object]:
    """The values of `key` under `[brat]` in the working folder's `.streamlit/secrets.toml`, then
    in the home folder's; files that are missing, unreadable or lack the key give none."""
    import tomllib

    for folder in (Path.cwd(), Path.home()):
        path = folder / ".streamlit" / "secrets.toml"
        try:
            value = tomllib.loads(path.read_text(encoding="utf-8")).get("brat", {}).get(key)
        except (OSError, tomllib.TOMLDecodeError, AttributeError):
            continue
        if value is not None:
            yield value
