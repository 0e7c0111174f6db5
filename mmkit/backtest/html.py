"""A self-contained HTML page of a backtest: the metrics and the PNGs embedded as base64.

One file a desk can mail or archive: no external scripts, styles or images.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 10px;text-align:left}"
    "th{background:#f3f3f3}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}"
    "pre{background:#f7f7f7;padding:1em;overflow:auto}"
)


def _rows(section: Mapping[str, Any]) -> str:
    return "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape('-' if v is None else str(v))}</td></tr>"
        for k, v in section.items()
    )


def render_html(report: Mapping[str, Any], images: Mapping[str, Path], title: str = "mmkit backtest") -> str:
    """The page as a string (``images``: name -> PNG path, embedded in the given order)."""
    scalars = {k: v for k, v in report.items() if not isinstance(v, dict)}
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<table>{_rows(scalars)}</table>",
    ]
    for key, value in report.items():
        if isinstance(value, dict):
            parts.append(f"<h2>{html.escape(key)}</h2><table>{_rows(value)}</table>")
    for name, path in images.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
    parts.append(f"<h2>report.json</h2><pre>{html.escape(json.dumps(report, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(
    report: Mapping[str, Any], images: Mapping[str, Path], path: Path, title: str = "mmkit backtest"
) -> Path:
    path.write_text(render_html(report, images, title), encoding="utf-8")
    return path
