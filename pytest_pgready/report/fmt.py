"""Wording and number formats shared by the terminal, Markdown and HTML renderers (one voice everywhere)."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

STATUS_LABEL = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "na": "N/A", "waived": "WAIVED"}
STATUS_ORDER = ("pass", "waived", "na", "fail", "error")  # terminal: failures last
_MD_CODE = re.compile(r"\*\*|`")


def num(x: Any, digits: int = 1) -> str:
    """87.5 → '87.5', 85.0 → '85', None → 'n/a'."""
    if x is None:
        return "n/a"
    try:
        v = round(float(x), digits)
    except (TypeError, ValueError):
        return str(x)
    return f"{v:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{v:.0f}"


def pct(x: Any) -> str:
    if x is None:
        return "n/a"
    v = float(x) * 100
    return f"{v:.0f}%" if v >= 1 or v == 0 else f"{v:.1f}%"


def plain_title(title: str) -> str:
    """Catalogue titles carry Markdown emphasis (**…**, `…`); renderers want plain text."""
    return _MD_CODE.sub("", title or "")


def ready(doc: Mapping[str, Any]) -> bool:
    return bool((doc.get("gate") or {}).get("passed"))


def verdict_word(doc: Mapping[str, Any]) -> str:
    return "READY" if ready(doc) else "NOT READY"


def gate_text(doc: Mapping[str, Any]) -> str:
    """'gate PASSED (fail-under 85)' / 'gate FAILED (no fail-under)'."""
    gate = doc.get("gate") or {}
    fu = gate.get("fail_under")
    word = "PASSED" if gate.get("passed") else "FAILED"
    return f"gate {word} ({'fail-under ' + num(fu, 2) if fu is not None else 'no fail-under'})"


def verdict_line(doc: Mapping[str, Any]) -> str:
    """`pgready: score 87.5 (B) · coverage 93% · gate PASSED (fail-under 85)`."""
    return (f"pgready: score {num(doc.get('score'))} ({doc.get('grade')}) · coverage {pct(doc.get('coverage'))}"
            f" · {gate_text(doc)}")


def topology_text(target: Mapping[str, Any]) -> str:
    topo = target.get("topology") or {}
    if not topo:
        return "unknown"
    parts = []
    if "primary" in topo:
        parts.append(f"{topo.get('primary')} primary")
    if "replicas" in topo:
        n = topo.get("replicas") or 0
        parts.append(f"{n} replica{'s' if n != 1 else ''}" + (" (sync)" if topo.get("synchronous") else ""))
    if topo.get("pgbouncer"):
        parts.append("PgBouncer")
    if topo.get("toxiproxy"):
        parts.append("Toxiproxy")
    return ", ".join(parts) or "unknown"


def objects_of(check: Mapping[str, Any]) -> list[str]:
    objs = (check.get("evidence") or {}).get("objects")
    if isinstance(objs, (list, tuple)):
        return [str(o) for o in objs]
    return [str(objs)] if objs else []


def remedy_of(check: Mapping[str, Any]) -> list[str]:
    rem = (check.get("evidence") or {}).get("remedy")
    if rem is None or rem == "" or rem == []:
        return []
    return [str(r) for r in rem] if isinstance(rem, (list, tuple)) else [str(rem)]


def value_text(v: Any) -> str:
    """Evidence values as text: scalars as is, structures as indented JSON."""
    if isinstance(v, str):
        return v
    if v is None or isinstance(v, (bool, int, float)):
        return json.dumps(v)
    return json.dumps(v, indent=2, ensure_ascii=False, default=str)


# C0 and C1 control characters but tab, newline and carriage return (whitespace, collapsed by one_line), and DEL.
# Quoted identifiers may hold them (quote_ident keeps them): printed raw, ESC [2J clears a terminal and
# ESC ] sets its title, so renderers show them as \xNN instead. The same for Unicode's bidirectional
# formatting characters (ALM, LRM/RLM, the embeddings and overrides U+202A-202E, the isolates U+2066-2069):
# a name holding U+202E displays the rest of the line reversed ("Trojan Source"), in a terminal, a page or
# a Markdown viewer alike, so they are shown as \uNNNN.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    n = ord(m.group())
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def printable(text: str) -> str:
    """Control and bidirectional formatting characters as visible `\\x1b` / `\\u202e` escapes; everything
    else unchanged."""
    return _CONTROL.sub(_escape, text)


def one_line(text: Any, limit: int | None = None) -> str:
    s = " ".join(printable(str(text or "")).split())
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return s
