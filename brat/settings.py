"""Where brat keeps its work, and which model is active.

- `$BRAT_HOME` (default `~/.brat`) holds the app's training runs (`runs/NAME/`) and the pointer
  to the active model (`active-model`, one line: the model folder's path).
- The active model is `$BRAT_MODEL` when set, else the promoted one, else the shipped model.
- The default dataset folder of the app is `$BRAT_DATA`, else `data` under `[brat]` in
  `.streamlit/secrets.toml`, else none: the user types a path.
- `admin_password` under `[brat]` in `.streamlit/secrets.toml` restricts the app's training and
  promotion to whoever types it; with none set, they are open to every user.

Promotion rewrites the pointer with one rename, so a reader sees the old or the new model folder,
never a mix; model folders themselves are written once and not changed afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

# The model the app and commands use unless told otherwise.
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "mobilenetv2-brain-mri"
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


def _secrets_setting(key: str) -> str | None:
    import tomllib

    for folder in (Path.cwd(), Path.home()):
        path = folder / ".streamlit" / "secrets.toml"
        try:
            value = tomllib.loads(path.read_text(encoding="utf-8")).get("brat", {}).get(key)
        except (OSError, tomllib.TOMLDecodeError, AttributeError):
            continue
        if value:
            return str(value)
    return None
