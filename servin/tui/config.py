"""The console's settings file (``~/.config/servin/tui.toml``) and its themes.

```toml
theme = "light"            # or "dark" (the default)

[keys]                     # binding id = key(s), comma-separated; see the help screen (?)
"containers.stop" = "x"
"logs.search" = "/,ctrl+f"
```
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from textual.theme import Theme

from servin.errors import InvalidArgument

CONFIG_ENV = "SERVIN_TUI_CONFIG"


def config_path() -> Path:
    """Where the settings live: $SERVIN_TUI_CONFIG, else $XDG_CONFIG_HOME/servin/tui.toml."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "servin" / "tui.toml"


@dataclass
class TuiConfig:
    """Settings read from the file (every field has a default)."""

    theme: str = "dark"
    keys: dict[str, str] = field(default_factory=dict)
    path: Path | None = None


def load_config(path: Path | None = None) -> TuiConfig:
    """Read the settings file; a missing file gives the defaults, a broken one an error."""
    path = path or config_path()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return TuiConfig(path=path)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"cannot read {path}: {exc}") from None
    theme = raw.get("theme", "dark")
    if theme not in THEMES:
        raise InvalidArgument(f"{path}: theme must be one of {', '.join(THEMES)}")
    keys = raw.get("keys", {})
    if not isinstance(keys, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in keys.items()
    ):
        raise InvalidArgument(f"{path}: [keys] must map binding ids to key strings")
    return TuiConfig(theme=theme, keys=dict(keys), path=path)


# Colours picked for contrast on both truecolor and 256-colour terminals (tmux's default):
# every foreground/background pair stays readable after the 256-colour downgrade.
DARK = Theme(
    name="servin-dark",
    primary="#5fafff",
    secondary="#87afd7",
    accent="#ffaf5f",
    foreground="#e4e4e4",
    background="#121212",
    surface="#1c1c1c",
    panel="#262626",
    success="#5fd75f",
    warning="#ffd75f",
    error="#ff5f5f",
    dark=True,
)
LIGHT = Theme(
    name="servin-light",
    primary="#005fd7",
    secondary="#005f87",
    accent="#af5f00",
    foreground="#121212",
    background="#ffffff",
    surface="#f5f5f5",
    panel="#e4e4e4",
    success="#008700",
    warning="#875f00",
    error="#d70000",
    dark=False,
)
THEMES = {"dark": DARK, "light": LIGHT}
