"""Pieces every promptc HTML report shares: the stylesheet, the page head, sortable
tables and the row filter (buttons and a search box).

Reports are single files that open offline: the scripts are inline vanilla JavaScript,
and a CSP meta tag forbids every fetch. A filterable table marks each body row with
`data-<filter>="1"` for every filter it belongs to; the filter script only reads those
attributes (and the row's text for the search), so the Python side decides membership
and a test can check it without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

STYLE = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#fff;--alt:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--bar:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#8d96a0;--line:#30363d;--bg:#0d1117;--alt:#161b22;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--bar:#4493f8}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1200px;padding:24px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.muted{color:var(--muted)}.mono,td.v{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.badge{display:inline-block;padding:1px 10px;border-radius:12px;color:#fff;font-weight:600;font-size:13px;vertical-align:2px}
.PASS,.pass{background:var(--ok)}.FAIL,.fail,.error{background:var(--bad)}.scored{background:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;margin-top:16px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.card b{display:block;font-size:18px}.card span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--alt);position:sticky;top:0;white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.v div{white-space:pre-wrap;word-break:break-word;max-height:9em;overflow:auto;min-width:12em}
td.err,.bad{color:var(--bad)}
tr:hover td{background:var(--alt)}
td .badge{font-size:11px;padding:0 7px}
.meter{display:inline-block;width:80px;height:8px;background:var(--alt);border:1px solid var(--line);border-radius:4px;overflow:hidden;vertical-align:middle;margin-left:6px}
.meter i{display:block;height:100%;background:var(--bar)}
svg text{fill:var(--muted);font-size:11px}svg .bar{fill:var(--bar)}svg .axis{stroke:var(--line)}
svg .mean{stroke:var(--fg);stroke-dasharray:4 3}svg .gate{stroke:var(--bad);stroke-dasharray:2 2}
.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0}
.filters button{font:inherit;padding:3px 12px;border:1px solid var(--line);border-radius:14px;background:var(--bg);color:var(--fg);cursor:pointer}
.filters button[aria-pressed=true]{background:var(--bar);border-color:var(--bar);color:#fff}
.filters input{font:inherit;padding:3px 8px;border:1px solid var(--line);border-radius:6px;min-width:16em;background:var(--bg);color:var(--fg)}
tr[hidden]{display:none}
.scroll{overflow-x:auto}
"""

# Click a header to sort; numbers compare as numbers (cells carry data-v), blanks sort lowest.
SORT_JS = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  function sort() {
    var table = th.closest("table"), body = table.tBodies[0], rows = Array.from(body.rows);
    var asc = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    function key(tr) { var td = tr.cells[col]; return td.dataset.v !== undefined ? td.dataset.v : td.textContent.trim(); }
    var numeric = rows.every(function (tr) { var k = key(tr); return k === "" || !isNaN(k); });
    rows.sort(function (a, b) {
      var x = key(a), y = key(b), c;
      if (numeric) { x = x === "" ? -Infinity : +x; y = y === "" ? -Infinity : +y; c = x < y ? -1 : x > y ? 1 : 0; }
      else { c = x.localeCompare(y, undefined, {numeric: true, sensitivity: "base"}); }
      return asc ? c : -c;
    });
    rows.forEach(function (tr) { body.appendChild(tr); });
  }
  th.tabIndex = 0;
  th.addEventListener("click", sort);
  th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
});
"""

# Filter buttons and search of every `.filters` bar; each bar names its table in data-table.
FILTER_JS = """
document.querySelectorAll(".filters").forEach(function (bar) {
  var table = document.getElementById(bar.dataset.table), search = bar.querySelector("input");
  var count = bar.querySelector(".count"), mode = "all";
  var buttons = Array.from(bar.querySelectorAll("button[data-filter]"));
  function apply() {
    var q = search.value.trim().toLowerCase(), shown = 0;
    Array.from(table.tBodies[0].rows).forEach(function (tr) {
      var ok = (mode === "all" || tr.getAttribute("data-" + mode) === "1") &&
               (!q || tr.textContent.toLowerCase().indexOf(q) >= 0);
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + table.tBodies[0].rows.length + " rows";
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function () {
      mode = b.dataset.filter;
      buttons.forEach(function (x) { x.setAttribute("aria-pressed", x === b ? "true" : "false"); });
      apply();
    });
  });
  search.addEventListener("input", apply);
  apply();
});
"""


def page_head(title: str) -> str:
    """`<!doctype html>` up to the opening `<body>`, with the CSP that forbids any fetch."""
    return "\n".join([
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Belt and braces: even a bug here cannot make the browser fetch anything.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
    ])


def filter_bar(table_id: str, filters: Sequence[tuple[str, str, int]], total: int) -> str:
    """Buttons (key, label, count) plus `all` and a search box, filtering table `table_id`."""
    buttons = [f'<button type="button" data-filter="all" aria-pressed="true">all ({total:,})</button>']
    buttons += [f'<button type="button" data-filter="{escape(key)}" aria-pressed="false">'
                f"{escape(label)} ({n:,})</button>" for key, label, n in filters]
    return (f'<div class="filters" data-table="{escape(table_id)}">{"".join(buttons)}'
            '<input type="search" placeholder="search rows" aria-label="search rows">'
            f'<span class="count muted">{total:,} of {total:,} rows</span></div>')


def scripts() -> str:
    """The sort and filter scripts, to put last in the body."""
    return f"<script>{SORT_JS}{FILTER_JS}</script>"
