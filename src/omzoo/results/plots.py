"""The throughput plot, rendered with no network: a matplotlib PNG in a script-free page, plus an interactive page
with vega, vega-lite and vega-embed inlined when the optional `vl-convert-python` package is installed (DVC's own
HTML loads them from a CDN, docs/dvc.md §7).
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

from omzoo.core import paths
from omzoo.core.io import claim_folder, write_files_atomic
from omzoo.results import throughput
from omzoo.results.revisions import DvcError, dvc_json

PLOT_ID = "throughput"
#: A <script src=...> or <link href=...> that reaches the network: what an offline page must not have.
_REMOTE_ASSET = re.compile(r"<(script|link)\b[^>]*\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", re.IGNORECASE)


def plot_spec(revisions: list[str] | None) -> dict[str, Any]:
    """The filled Vega-Lite spec of the `throughput` plot: `plots diff` across revisions, or `plots show`
    for the workspace. Revisions go before `--targets`, which would otherwise swallow them."""
    args = ["plots", "diff", *revisions, "--targets", PLOT_ID] if revisions else ["plots", "show", PLOT_ID]
    out, stderr = dvc_json([*args, "--json"])
    for entry in (out.get("data") or {}).get(PLOT_ID, []):
        if entry.get("type") == "vega" and entry.get("content", {}).get("data", {}).get("values"):
            return entry["content"]
    why = [ln.strip() for ln in stderr.splitlines() if ln.strip()] + [json.dumps(out.get("errors", ""))]
    raise DvcError(f"no data for plot {PLOT_ID!r} at {', '.join(revisions or ['workspace'])} "
                   f"(has the report stage run and reports/throughput.csv been committed?): {' '.join(why)[:300]}")


def plot_png(spec: dict[str, Any]) -> bytes:
    """The spec's data (each revision's reports/throughput.csv, tagged with `rev`) drawn as the report's figure:
    throughput vs batch size, a line per model and revision, the rounds' interval as error bars."""
    rows = [r for v in spec["data"]["values"] if (r := throughput.parse_row({"rev": "workspace", **v}))]
    revs = list(dict.fromkeys(r["rev"] for r in rows))
    return throughput.png_bytes(rows, f"{PLOT_ID}: {' vs '.join(revs)}")


def _point_order(config: Any) -> tuple[str, int, str]:
    """A `config` cell (`scnet50_v1d-8-fp32`) as (model, bs, precision), so batch sizes sort as numbers, not text."""
    return paths.parse_key(str(config)) or (str(config), 0, "")


def assert_offline(page: str, name: str) -> None:
    """An offline page must not load a script or stylesheet from the network."""
    hit = _REMOTE_ASSET.search(page)
    if hit:
        raise ValueError(f"{name}: loads {hit.group(0)!r}… from the network; it would not render offline")


def static_html(spec: dict[str, Any], png: bytes, title: str, interactive: str | None) -> str:
    """A script-free page: the PNG inlined, the data as a table, the Vega-Lite spec for reference."""
    enc = spec.get("encoding", {})
    xf, yf = enc.get("x", {}).get("field", ""), enc.get("y", {}).get("field", "")
    revs = list(dict.fromkeys(str(v.get("rev")) for v in spec["data"]["values"]))
    values = sorted(spec["data"]["values"], key=lambda v: (_point_order(v.get(yf)), revs.index(str(v.get("rev")))))
    rows = "\n".join(f"<tr><td>{html.escape(str(v.get('rev', '')))}</td><td>{html.escape(str(v.get(yf)))}</td>"
                     f"<td style='text-align:right'>{html.escape(str(v.get(xf)))}</td></tr>" for v in values)
    img = base64.b64encode(png).decode()
    link = f'<p><a href="{html.escape(interactive)}">interactive version</a> (vega inlined, offline)</p>' \
        if interactive else ""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px}} pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<img alt="{PLOT_ID} plot" style="max-width:100%" src="data:image/png;base64,{img}">
{link}
<h2>Data</h2>
<table><tr><th>rev</th><th>{html.escape(yf)}</th><th>{html.escape(xf)}</th></tr>
{rows}
</table>
<details><summary>Vega-Lite spec (from dvc)</summary><pre>{html.escape(json.dumps(spec, indent=2))}</pre></details>
</body></html>
"""


def interactive_html(spec: dict[str, Any]) -> str | None:
    """Vega-Lite page with vega, vega-lite and vega-embed inlined, when `vl-convert-python` is installed."""
    try:
        import vl_convert as vlc
    except ImportError:
        return None
    y = spec.get("encoding", {}).get("y", {})
    if y.get("field"):  # the points in (model, bs) order, not as text sorts their keys
        order = sorted({str(v.get(y["field"])) for v in spec["data"]["values"]}, key=_point_order)
        spec = {**spec, "encoding": {**spec["encoding"], "y": {**y, "sort": order}}}
    major = "6" if "/v6" in str(spec.get("$schema", "")) else "5"
    versions = [v for v in vlc.get_vegalite_versions() if v.split(".")[0] == major]
    best = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")), default=None)
    return vlc.vegalite_to_html(spec, vl_version=best, bundle=True) if best else None


def plot_files(revisions: list[str] | None, out: Path) -> dict[Path, bytes]:
    """<out>/throughput.png and <out>/index.html (plus interactive.html when possible), all offline, not yet written:
    the caller commits them in one write_files_atomic with the rest of its result (never a new PNG beside an old
    page)."""
    spec = plot_spec(revisions)
    png = plot_png(spec)
    files = {out / "throughput.png": png}
    title = f"omzoo {PLOT_ID}: " + (" vs ".join(revisions) if revisions else "workspace")
    interactive = interactive_html(spec)
    if interactive is not None:
        assert_offline(interactive, "interactive.html")
        files[out / "interactive.html"] = interactive.encode()
    page = static_html(spec, png, title, "interactive.html" if interactive else None)
    assert_offline(page, "index.html")
    files[out / "index.html"] = page.encode()
    return files


def render_plots(revisions: list[str] | None, out: Path) -> Path:
    """Write the plot's files (plot_files) into `out`, all together; the page's path."""
    out = claim_folder(out, "plots")  # new, empty or omzoo's: a user's index.html is never overwritten
    write_files_atomic(plot_files(revisions, out))
    return out / "index.html"
