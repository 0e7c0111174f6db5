// mmkit operator console: draws the snapshots the instance pushes on /events (server-sent events).
"use strict";
const $ = (id) => document.getElementById(id);
const fmt = (v, d = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const time = (ns) => new Date(ns / 1e6).toISOString().substring(11, 23);
let charted = false;
let controlsDrawn = false;

// Money in the ledger's unit (p.unit): a quote currency to the cent, an inverse contract's coin to the satoshi.
const money = (p, v) => fmt(v, p.inverse ? 8 : 2);

// The PnL section's title: the unit the figures are in (an inverse contract's coin, with the quote at the mark).
function pnlTitle(p) {
  if (!p.inverse) return p.unit === "quote" ? "PnL (quote currency)" : `PnL (${p.unit})`;
  return `PnL (${p.unit}; ${p.quote} at the mark)`;
}

// One PnL figure: a linear instrument's as it always was; an inverse contract's coin figure named, with its
// value in the quote currency at the mark (or "no mark yet": never a coin figure shown as if it were quote).
function pnlFigure(p, name) {
  if (!p.inverse) return fmt(p[name]);
  const q = p.in_quote ? `${fmt(p.in_quote[name])} ${esc(p.quote)}` : `${esc(p.quote)}: no mark yet`;
  return `${money(p, p[name])} ${esc(p.unit)} (${q})`;
}

function pnlLine(p) {
  const mark = p.inverse ? ` · mark ${fmt(p.mark)}` : "";
  return `<span id="pnl-total">total ${pnlFigure(p, "total")}</span> · realized ${pnlFigure(p, "realized")} · unrealized ${pnlFigure(p, "unrealized")} · fees ${pnlFigure(p, "fees")}${mark}`;
}

function pill(id, text, cls) { const el = $(id); el.textContent = text; el.className = "pill " + cls; }

function drawLadder(s) {
  const ours = new Map();
  for (const o of s.orders) ours.set(o.side + ":" + o.price, o);
  const rows = ["<tr><th>ours</th><th>bid size</th><th>price</th><th>ask size</th><th>ours</th></tr>"];
  const asks = s.book.asks.slice().reverse();
  for (const [p, q] of asks) {
    const o = ours.get("sell:" + p);
    rows.push(`<tr class="${o ? "ours" : ""}"><td></td><td></td><td class="sell">${fmt(p)}</td><td>${fmt(q, 4)}</td><td class="sell">${o ? "L" + o.level + " " + fmt(o.remaining, 4) : ""}</td></tr>`);
  }
  rows.push(`<tr><td colspan="5" class="l">mid ${fmt(s.mid)} · fair ${fmt(s.reference.price)} · book ${s.book.valid ? "valid" : "INVALID"}</td></tr>`);
  for (const [p, q] of s.book.bids) {
    const o = ours.get("buy:" + p);
    rows.push(`<tr class="${o ? "ours" : ""}"><td class="buy">${o ? "L" + o.level + " " + fmt(o.remaining, 4) : ""}</td><td>${fmt(q, 4)}</td><td class="buy">${fmt(p)}</td><td></td><td></td></tr>`);
  }
  $("ladder").innerHTML = rows.join("");
}

function drawOrders(s) {
  const rows = ["<tr><th class='l'>side</th><th>level</th><th>price</th><th>size</th><th>left</th><th>from mid (bps)</th><th>age (s)</th><th class='l'>state</th></tr>"];
  for (const o of s.orders) {
    rows.push(`<tr><td class="l ${o.side}">${o.side}</td><td>${o.level ?? "–"}</td><td>${fmt(o.price)}</td><td>${fmt(o.qty, 4)}</td><td>${fmt(o.remaining, 4)}</td><td>${fmt(o.distance_bps, 1)}</td><td>${fmt(o.age_s, 1)}</td><td class="l">${o.state}</td></tr>`);
  }
  $("orders").innerHTML = rows.join("");
  $("orders").dataset.count = String(s.orders.length);
}

function drawTables(s) {
  const inverse = s.pnl.inverse;
  const qty = inverse ? `qty (${esc(s.inventory.unit)})` : "qty";
  const f = [`<tr><th class='l'>time</th><th class='l'>venue</th><th class='l'>side</th><th>price</th><th>${qty}</th><th>fee</th></tr>`];
  // a fee is shown in the currency the venue charged it in whenever that is not the ledger's own unit
  const fee = (x) => fmt(x.fee, inverse && x.fee_currency === s.pnl.unit ? 8 : 4) + (inverse || x.fee_currency !== s.pnl.unit ? " " + esc(x.fee_currency) : "");
  for (const x of s.fills) f.push(`<tr><td class="l">${time(x.ts_ns)}</td><td class="l">${esc(x.venue)}</td><td class="l ${x.side}">${x.side}</td><td>${fmt(x.price)}</td><td>${fmt(x.qty, 4)}</td><td>${fee(x)}</td></tr>`);
  $("fills").innerHTML = f.join("");
  const e = ["<tr><th class='l'>time</th><th class='l'>what</th><th class='l'>detail</th></tr>"];
  for (const a of s.actions) e.push(`<tr class="action"><td class="l">${time(a.ts_ns)}</td><td class="l ${a.ok ? "" : "sell"}">${esc(a.action)} ${a.ok ? "done" : "refused/failed"}</td><td class="l">${esc(a.message)} (${esc(a.source)})</td></tr>`);
  for (const r of s.rejects) e.push(`<tr><td class="l">${time(r.ts_ns)}</td><td class="l sell">reject ${esc(r.action)}</td><td class="l">${esc(r.reason)}: ${esc(r.message)}</td></tr>`);
  for (const p of s.errors) e.push(`<tr><td class="l">${p.ts_ns ? time(p.ts_ns) : ""}</td><td class="l sell">${esc(p.kind)} ×${p.count}</td><td class="l">${esc(p.reason)}</td></tr>`);
  $("events").innerHTML = e.join("");
}

function drawHeader(s) {
  $("title").textContent = `${s.instance} · ${s.strategy} · ${s.symbol}`;
  pill("venue", `${s.venue} ${s.venue_connected ? "connected" : "DOWN"}`, s.venue_connected ? "ok" : "bad");
  const ks = s.kill_switch, unlimited = ks.unlimited_loss;  // no loss limit on purpose: never a green "ok"
  pill("kill", ks.halted ? `kill switch HALTED: ${ks.reason}` : (unlimited ? `kill switch: ${unlimited}` : "kill switch ok"),
       ks.halted ? "bad" : (unlimited ? "warn" : "ok"));
  // Green "quoting" only when nothing holds it: a runner gate (the venue's dead man's switch, the market
  // claim, the journal), the kill switch or a controller halt keeps quotes off while the engine runs.
  // Every gate that holds is named (in gate order), not only the first: fixing one must not hide the next.
  const gates = s.gates || [];
  if (!s.quoting) pill("quoting", "quoting PAUSED", "warn");
  else if (s.halt) pill("quoting", `quoting HALTED: ${s.halt}`, "bad");
  else if (gates.length) pill("quoting", "quoting HELD " + gates.map(g => `by gate ${g.gate} since ${time(g.since_ns)} (${g.ticks} ticks): ${g.reason}`).join("; "), "bad");
  else if (ks.halted) pill("quoting", "quoting HALTED (kill switch)", "bad");
  else pill("quoting", "quoting", "ok");
  if (s.hedge) pill("hedge", `hedge ${s.hedge.venue}: ${s.hedge.stopped ? "STOPPED " + s.hedge.stopped : "on"} (${s.hedge.working} working)`, s.hedge.stopped ? "bad" : "ok");
  else pill("hedge", "no hedge", "");
  const r = s.reference;
  pill("ref", `fair ${fmt(r.price)} · confidence ${fmt(r.confidence, 2)} · ${r.sources} src${r.venues && r.venues.length ? " (" + r.venues.map(esc).join(", ") + ")" : ""} · age ${fmt(r.age_s, 1)} s`, r.confidence >= 0.3 ? "ok" : "warn");
  pill("updated", `tick ${s.ticks} · ${time(s.ts_ns)}`, "");
  const inv = s.inventory, p = s.pnl;
  $("pnl-title").textContent = pnlTitle(p);
  $("pnl").innerHTML = pnlLine(p);
  const pct = Math.min(100, inv.utilization * 100);
  const size = p.inverse ? ` ${esc(inv.unit)}` : "";  // an inverse contract's sizes are contracts, not coins
  $("inventory").innerHTML = `position <span id="position">${fmt(inv.position, 4)}</span>${size} of ±${fmt(inv.max_position, 2)}${size} · skew ${fmt(inv.skew_ticks, 2)} ticks<div class="bar"><div style="width:${pct}%"></div></div>`;
}

function drawControls(s) {
  if (controlsDrawn) return;
  controlsDrawn = true;
  if (!s.controls) { $("controls").innerHTML = '<span class="pill" id="readonly">read-only</span>'; return; }
  const parts = ['<input id="token" type="password" placeholder="control token" size="14">'];
  for (const a of s.control_actions) parts.push(`<button id="btn-${a}" data-action="${a}">${a}</button>`);
  $("controls").innerHTML = parts.join(" ");
  for (const b of $("controls").querySelectorAll("button")) b.addEventListener("click", () => control(b.dataset.action));
}

async function control(action) {
  if (!window.confirm(`${action} ${document.title}? This acts on the live instance.`)) return;
  const token = ($("token") || {}).value || "";
  try {
    const r = await fetch("/api/control", { method: "POST", headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token }, body: JSON.stringify({ action }) });
    const body = await r.json();
    $("msg").textContent = `${action}: ${body.ok ? "done" : "not done"}: ${body.message}`;
    $("msg").className = body.ok ? "" : "sell";
  } catch (err) {
    $("msg").textContent = `${action}: ${err}`;
  }
}

const layout = (y) => ({ margin: { l: 50, r: 10, t: 5, b: 30 }, paper_bgcolor: "#181c22", plot_bgcolor: "#181c22", font: { color: "#bbc", size: 10 }, yaxis: { title: y }, xaxis: { type: "date" } });
const when = (ns) => new Date(ns / 1e6);

function chart(history, s) {
  if (!charted) {
    charted = true;
    // charted in the ledger's unit (an inverse contract's coin: its USD value would move with the price alone)
    Plotly.newPlot("pnl-chart", [{ x: history.map((h) => when(h.ts_ns)), y: history.map((h) => h.pnl), mode: "lines", name: "PnL" }], layout(`PnL (${s.pnl.unit})`), { displayModeBar: false, responsive: true });
    const lim = s.inventory.max_position;
    Plotly.newPlot("pos-chart", [
      { x: history.map((h) => when(h.ts_ns)), y: history.map((h) => h.position), mode: "lines", name: "position" },
    ], { ...layout(s.pnl.inverse ? `position (${s.inventory.unit})` : "position"), shapes: [-lim, lim].map((v) => ({ type: "line", xref: "paper", x0: 0, x1: 1, y0: v, y1: v, line: { color: "#a55", dash: "dot" } })) }, { displayModeBar: false, responsive: true });
    return;
  }
  const p = s.point;
  Plotly.extendTraces("pnl-chart", { x: [[when(p.ts_ns)]], y: [[p.pnl]] }, [0], 3600);
  Plotly.extendTraces("pos-chart", { x: [[when(p.ts_ns)]], y: [[p.position]] }, [0], 3600);
  $("pnl-chart").dataset.points = String(Number($("pnl-chart").dataset.points || history.length) + 1);
}

function draw(s, history) {
  drawHeader(s); drawControls(s); drawLadder(s); drawOrders(s); drawTables(s);
  chart(history || [], s);
  document.body.dataset.ticks = String(s.ticks);
}

async function main() {
  const first = await (await fetch("/api/state")).json();
  $("pnl-chart").dataset.points = String(first.history.length);
  draw(first, first.history);
  const events = new EventSource("/events");
  events.onmessage = (m) => draw(JSON.parse(m.data), null);
  events.onerror = () => pill("updated", "disconnected from the instance", "bad");
}
main();
