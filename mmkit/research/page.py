"""The comparison page of a sweep (``index.html``): offline, interactive, one file plus the trials' tearsheets.

It holds the ranking of the parameter sets (score = mean objective over their
data sets; infeasible and failed ones listed after the feasible ones, with
why), a heatmap of the objective over any two parameters (chosen on the page;
cells average over the other parameters and the data sets), the walk-forward
folds with in-sample against out-of-sample results side by side, and a link
from every trial to its own tearsheet (``trials/<key>/report.html``). Plotly's
JavaScript is embedded, so the page opens without a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmkit.research import no_fill
from mmkit.research.search import Fold, PointScore, SweepResult
from mmkit.research.spec import SweepSpec

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mmkit sweep {{ name }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left}
tr.infeasible td{color:#999} tr.failed td{color:#b00}
.small{font-size:12px;color:#555}
</style>
<script>{{ plotly_js | safe }}</script>
</head><body>
<h1>mmkit sweep: {{ name }}</h1>
<p class="small">objective <b>{{ objective }}</b> ({{ direction }}) &middot; search {{ method }}
 &middot; mode {{ mode }} &middot; {{ n_trials }} trials, {{ n_failed }} failed &middot; mmkit {{ version }}
{% if constraints %}<br>constraints: {{ constraints | join(", ") }}{% endif %}</p>
{% if folds %}
<h2>Walk-forward: in-sample against out-of-sample</h2>
<table><tr><th>fold</th><th class="l">optimised on</th><th class="l">evaluated on</th><th class="l">best parameters</th>
<th>in-sample</th><th>out-of-sample</th><th class="l">trials</th></tr>
{% for f in folds %}<tr><td>{{ f.fold }}</td><td class="l">{{ f.train }}</td><td class="l">{{ f.test }}</td>
<td class="l">{{ f.params }}</td><td>{{ f.in_sample }}</td><td>{{ f.out_of_sample }}</td>
<td class="l">{% for k in f.trials %}<a href="trials/{{ k }}/report.html">{{ k[:8] }}</a> {% endfor %}</td></tr>
{% endfor %}
<tr><th colspan="4" class="l">mean</th><th>{{ wf_mean_is }}</th><th>{{ wf_mean_oos }}</th><th></th></tr>
</table>
{% endif %}
<h2>Heatmap</h2>
<p>x <select id="hx"></select> y <select id="hy"></select> <span class="small">(mean objective of the feasible
trials in each cell)</span></p>
<div id="heat" style="width:900px;height:520px"></div>
<h2>Ranking</h2>
<table><tr><th>rank</th><th>point</th>{% for p in params %}<th>{{ p }}</th>{% endfor %}<th>score</th>
<th class="l">trials (data set: objective)</th><th class="l">why not ranked; notes</th></tr>
{% for r in ranking %}<tr class="{{ r.cls }}"><td>{{ r.rank }}</td><td>{{ r.point }}</td>
{% for p in params %}<td>{{ r.params[p] }}</td>{% endfor %}<td>{{ r.score }}</td>
<td class="l">{% for t in r.trials %}<a href="trials/{{ t.key }}/report.html">{{ t.dataset }}</a>: {{ t.objective }}<br>
{% endfor %}</td><td class="l">{{ r.why }}</td></tr>
{% endfor %}</table>
<script>
const DATA = {{ data | tojson }};
const sx = document.getElementById("hx"), sy = document.getElementById("hy");
DATA.params.forEach((p, i) => { sx.add(new Option(p, p)); sy.add(new Option(p, p)); });
if (DATA.params.length > 1) { sy.selectedIndex = 1; }
function key(v) { return (typeof v === "number") ? v : String(v); }
function sorted(values) {
  return [...new Set(values.map(key))].sort((a, b) => (typeof a === "number" && typeof b === "number") ? a - b
    : String(a).localeCompare(String(b)));
}
function draw() {
  const px = sx.value, py = sy.value, rows = DATA.trials.filter(t => t.feasible && t.objective !== null);
  const xs = sorted(DATA.trials.map(t => t.params[px])), ys = sorted(DATA.trials.map(t => t.params[py]));
  const z = ys.map(() => xs.map(() => null)), n = ys.map(() => xs.map(() => 0));
  rows.forEach(t => {
    const i = ys.indexOf(key(t.params[py])), j = xs.indexOf(key(t.params[px]));
    z[i][j] = (z[i][j] === null ? 0 : z[i][j]) + t.objective; n[i][j] += 1;
  });
  for (let i = 0; i < ys.length; i++) for (let j = 0; j < xs.length; j++) if (n[i][j]) z[i][j] /= n[i][j];
  Plotly.newPlot("heat", [{type: "heatmap", x: xs.map(String), y: ys.map(String), z: z, colorscale: "Viridis",
    colorbar: {title: DATA.objective},
    hovertemplate: px + "=%{x}<br>" + py + "=%{y}<br>objective=%{z}<extra></extra>"}],
    {xaxis: {title: px, type: "category"}, yaxis: {title: py, type: "category"}, margin: {t: 20}});
}
sx.onchange = draw; sy.onchange = draw; draw();
</script>
</body></html>
"""


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _params_text(score: PointScore | None) -> str:
    return "" if score is None else ", ".join(f"{k}={v}" for k, v in score.params.items())


def ranking(result: SweepResult, direction: str) -> list[PointScore]:
    """Parameter sets, best first: feasible by score, then infeasible, then failed (stable by point number)."""
    sign = -1.0 if direction == "maximize" else 1.0
    points: dict[int, list[Any]] = {}
    for ev in result.evaluations:
        if ev.phase == "out_of_sample":
            continue
        points.setdefault(ev.point, []).append(ev)
    scores: list[PointScore] = []
    for point, evs in points.items():
        seen: dict[str, Any] = {}
        for ev in evs:
            seen.setdefault(ev.key, ev)
        unique = list(seen.values())
        objectives = [e.objective for e in unique]
        score = None if any(o is None for o in objectives) else sum(objectives) / len(objectives)
        scores.append(PointScore(point, unique[0].params, score, all(e.feasible for e in unique),
                                 [e.key for e in unique]))
    return sorted(scores, key=lambda s: (0 if s.feasible else 1 if s.score is not None else 2,
                                         sign * (s.score or 0.0), s.point))


def write_page(spec: SweepSpec, result: SweepResult, out: Path) -> Path:
    import jinja2
    from plotly.offline import get_plotlyjs

    by_key = {ev.key: ev for ev in result.evaluations}
    params = [p.path for p in spec.parameters]
    ranked = ranking(result, spec.direction)
    rows = []
    for rank, score in enumerate(ranked, start=1):
        evs = [by_key[k] for k in score.keys]
        failed = any(e.result["status"] != "ok" for e in evs)
        why = "; ".join(b for e in evs for b in e.broken)
        zero, total = no_fill.no_fill_counts(score, by_key)
        if zero:  # feasible or not, a set that never traded on a data set is marked (mmkit/research/no_fill.py)
            why = "; ".join(part for part in (why, f"filled nothing on {zero} of {total} data sets") if part)
        rows.append({
            "rank": rank if score.feasible else "", "point": score.point, "params": score.params,
            "score": _fmt(score.score), "cls": "" if score.feasible else "failed" if failed else "infeasible",
            "why": why, "trials": [{"key": e.key, "dataset": e.dataset.label, "objective": _fmt(e.objective)}
                                   for e in evs],
        })
    folds = [_fold_row(result, f) for f in result.folds]
    is_values = [f.best.score for f in result.folds if f.best is not None and f.best.score is not None]
    oos_values = [f.out_of_sample.score for f in result.folds if f.out_of_sample is not None
                  and f.out_of_sample.score is not None and f.out_of_sample.feasible]
    ran = sum(1 for f in result.folds if f.out_of_sample is not None)
    oos_mean = _mean(oos_values) if len(oos_values) == ran else \
        f"{_mean(oos_values) or 'n/a'} (mean of {len(oos_values)} feasible folds of {ran})"
    seen: set[str] = set()
    trials = []
    for ev in result.evaluations:
        if ev.key in seen:
            continue
        seen.add(ev.key)
        trials.append({"key": ev.key, "params": ev.params, "objective": ev.objective, "feasible": ev.feasible,
                       "dataset": ev.dataset.label})
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(_TEMPLATE).render(
        name=spec.name, objective=spec.objective, direction=spec.direction, method=spec.search.method,
        mode=spec.mode, constraints=[c.text for c in spec.constraints], params=params, ranking=rows, folds=folds,
        n_trials=len(seen), n_failed=sum(1 for ev in _unique(result) if ev.result["status"] != "ok"),
        version=_version(result), wf_mean_is=_mean(is_values), wf_mean_oos=oos_mean,
        plotly_js=get_plotlyjs(), data={"params": params, "objective": spec.objective, "trials": trials},
    )
    path = out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def _unique(result: SweepResult) -> Sequence[Any]:
    return list({ev.key: ev for ev in result.evaluations}.values())


def _version(result: SweepResult) -> str:
    versions = sorted({str(ev.result.get("mmkit_version", "")) for ev in result.evaluations})
    return ", ".join(versions)


def _mean(values: Sequence[float]) -> str:
    return _fmt(sum(values) / len(values)) if values else ""


def out_of_sample_why(result: SweepResult, fold: Fold) -> str:
    """Why a fold's out-of-sample trial is not a result ("" when it is feasible, or did not run).

    Why: its score was shown and averaged as the fold's out-of-sample result even when its backtest had a
    problem (data unhealthy, a controller failure): a walk-forward that looked like it held up, on a
    window the backtest would refuse.
    """
    if fold.out_of_sample is None or fold.out_of_sample.feasible:
        return ""
    return "; ".join(reason for ev in result.evaluations if ev.phase == "out_of_sample" and ev.fold == fold.fold
                     for reason in ev.broken)


def out_of_sample_text(result: SweepResult, fold: Fold) -> str:
    """The fold's out-of-sample score as the console and the page show it: marked when it is not a result."""
    if fold.out_of_sample is None:
        return ""
    score = "n/a" if fold.out_of_sample.score is None else _fmt(fold.out_of_sample.score)
    why = out_of_sample_why(result, fold)
    return f"{score} (infeasible: {why})" if why else score


def _fold_row(result: SweepResult, fold: Fold) -> dict[str, Any]:
    keys = (fold.best.keys if fold.best else []) + (fold.out_of_sample.keys if fold.out_of_sample else [])
    return {
        "fold": fold.fold, "train": fold.train, "test": fold.test, "params": _params_text(fold.best),
        "in_sample": _fmt(fold.best.score) if fold.best else "no feasible point",
        "out_of_sample": out_of_sample_text(result, fold),
        "trials": keys,
    }
