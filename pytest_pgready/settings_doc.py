"""The settings reference (docs/settings.md, `pgready settings`), rendered from settings.SPEC.

Generated, so the documentation cannot drift from what the plugin accepts: a test compares the file
with this rendering. Sections follow the `# --- area ---` comments of settings.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from .settings import SPEC, Key

_SECTION = re.compile(r"^\s*# --- (.+?) ---")
_KEY = re.compile(r'^\s*_k\("([a-z0-9_]+)"')


def sections(source: str) -> dict[str, str]:
    """Key name → the section comment above it in settings.py."""
    out, current = {}, "run options"
    for line in source.splitlines():
        m = _SECTION.match(line)
        if m:
            current = m.group(1)
            continue
        k = _KEY.match(line)
        if k:
            out[k.group(1)] = current
    return out


def _default(k: Key) -> str:
    if k.default in (None, [], {}, ()):
        return "—"
    if isinstance(k.default, bool):
        return "true" if k.default else "false"
    if isinstance(k.default, (list, tuple)):
        return ", ".join(str(v) for v in k.default)
    return str(k.default)


def _type(k: Key) -> str:
    t = k.type
    if k.choices:
        t = " \\| ".join(k.choices)
    if k.min is not None or k.max is not None:
        lo = "" if k.min is None else f"{k.min:g}"
        hi = "" if k.max is None else f"{k.max:g}"
        t += f" [{lo}…{hi}]"
    return t


def reference(spec: Iterable[Key] = SPEC, source: str | None = None) -> str:
    src = source if source is not None else Path(__file__).with_name("settings.py").read_text()
    where = sections(src)
    lines = ["# Settings reference", "",
             "Every key works in `[tool.pgready]` of pyproject.toml, in a file given with `--pgready-config`",
             "(top-level keys) and as a `pgready_<key>` ini key; keys marked *CLI* are also `--pgready-<key>`",
             "options (dashes for underscores). Precedence, highest first: command line, `--pgready-config`",
             "file, `[tool.pgready]` of the rootdir's pyproject.toml, ini, default.",
             "Unknown keys and out-of-range values are errors (one line naming the key and the fix).",
             "", "Generated from `pytest_pgready/settings.py` (`pgready settings` prints it).", ""]
    current = None
    for k in spec:
        sec = where.get(k.name, "other")
        if sec != current:
            current = sec
            lines += ["", f"## {sec}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        name = f"`{k.name}`" + (" *CLI*" if k.cli else "")
        text = k.help.replace("|", "\\|")
        lines.append(f"| {name} | {_type(k)} | {_default(k).replace('|', chr(92) + '|')} | {text} |")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"
