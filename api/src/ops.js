// The ops page's live part (served by payd from its binary; no third-party code). Polls
// /ops/data.json every 2 s; throughput and latency come from the deltas of payd's
// cumulative request counters between two polls.
"use strict";
(function () {
  const EVERY_MS = 2000;
  let last = null;

  function text(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  // The latency (ms) under which a share q of the requests in `counts` fell (upper bucket bound).
  function quantile(counts, bounds, q) {
    const total = counts.reduce((a, b) => a + b, 0);
    if (total === 0) return null;
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      seen += counts[i];
      if (seen >= q * total) {
        return i < bounds.length ? bounds[i] / 1000 : Infinity;
      }
    }
    return Infinity;
  }

  function cell(row, field, value) {
    const td = document.createElement("td");
    td.textContent = value;
    if (field) {
      td.dataset.field = field;
      if (typeof value === "number" || /^-?[0-9.]+$/.test(String(value))) td.className = "n";
    }
    row.appendChild(td);
  }

  function fill(tbody, rows, columns, key, empty) {
    tbody.textContent = "";
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      cell(tr, null, empty);
      tr.firstChild.colSpan = columns.length + 1;
      tbody.appendChild(tr);
      return;
    }
    for (const r of rows) {
      const tr = document.createElement("tr");
      tr.dataset[key.data] = r[key.field];
      if (key.bad) tr.className = key.bad(r) ? "bad" : "ok";
      cell(tr, null, r[key.field]);
      for (const c of columns) cell(tr, c, r[c]);
      tbody.appendChild(tr);
    }
  }

  function show(d, now) {
    const status = document.getElementById("status");
    status.textContent = d.ready ? "ready" : "not ready";
    status.className = d.ready ? "ready" : "not-ready";
    text("at", d.at);
    text("requests", String(d.requests));
    if (last) {
      const seconds = (now - last.now) / 1000;
      const delta = d.latency_counts.map((c, i) => c - last.d.latency_counts[i]);
      text("window", seconds.toFixed(1));
      text("throughput", ((d.requests - last.d.requests) / seconds).toFixed(1));
      const p50 = quantile(delta, d.latency_bounds_us, 0.5);
      const p99 = quantile(delta, d.latency_bounds_us, 0.99);
      text("p50", p50 === null ? "–" : p50 === Infinity ? "> 10000" : "≤ " + p50);
      text("p99", p99 === null ? "–" : p99 === Infinity ? "> 10000" : "≤ " + p99);
    }
    fill(
      document.querySelector("#today tbody"),
      d.today,
      ["payments_succeeded", "amount_succeeded", "payments_failed", "refunds_succeeded", "amount_refunded"],
      { data: "currency", field: "currency" },
      "no payments yet today"
    );
    fill(
      document.querySelector("#channels tbody"),
      d.channels,
      ["breaker", "success_rate", "mean_latency_ms", "calls", "inflight", "position", "low_water", "volume_today"],
      { data: "channel", field: "name", bad: (c) => c.breaker !== "closed" || c.below_low_water || !c.enabled },
      "no channels configured"
    );
    const p = d.positions;
    const cov = document.getElementById("coverage");
    if (cov && p) {
      const c = p.coverage;
      cov.textContent = `funds ${c.funds} / owed ${c.owed}: ` + (c.covered ? `surplus ${c.surplus}` : `SHORTFALL ${c.shortfall}`);
      cov.className = c.covered ? "ok" : "bad";
    }
    fill(
      document.querySelector("#reserves tbody"),
      p ? p.reserves : [],
      ["bank", "balance", "low_water"],
      { data: "reserve", field: "name", bad: (r) => r.below_low_water },
      "not ready"
    );
    const monitors = document.getElementById("monitors");
    if (monitors && p) {
      monitors.textContent = "";
      for (const a of p.alerts.length ? p.alerts : [null]) {
        const li = document.createElement("li");
        li.textContent = a ? `${a.monitor} ${a.subject}: ${a.message}` : "none firing";
        monitors.appendChild(li);
      }
    }
    fill(
      document.querySelector("#reconciliation tbody"),
      d.reconciliation,
      ["date", "status", "rows", "matched", "mismatches", "open", "long", "short"],
      { data: "channel", field: "channel", bad: (r) => r.open > 0 || r.status !== "done" },
      "no statements reconciled yet"
    );
    for (const [id, o] of [["orders", d.orders_open], ["authorizations", d.authorizations_outstanding]]) {
      const row = document.querySelector(`#outstanding tr[data-outstanding="${id}"]`);
      if (!row || !o) continue;
      row.querySelector('[data-field="count"]').textContent = `${o.count}${o.capped ? "+" : ""}`;
      row.querySelector('[data-field="amounts"]').textContent =
        o.amounts.length ? o.amounts.map(([c, a]) => `${c} ${a}`).join(", ") : "0";
      row.querySelector('[data-field="next_expiry"]').textContent = o.next_expiry || "–";
    }
    text("business_date", d.business_date || "–");
    const de = d.day_end;
    const head = document.getElementById("day_end");
    if (head) {
      head.textContent = de
        ? `${de.date} ${de.status}` + (de.snapshot_sha256 ? `, sha256 ${de.snapshot_sha256.slice(0, 16)}…` : "")
        : "none yet";
      head.className = de && de.status === "failed" ? "bad" : "ok";
    }
    fill(
      document.querySelector("#day_end_steps tbody"),
      de ? de.steps : [],
      ["status", "detail"],
      { data: "step", field: "name", bad: (s) => s.status === "failed" },
      "no day-end yet"
    );
    const alerts = document.getElementById("alerts");
    alerts.textContent = "";
    for (const a of d.alerts.length ? d.alerts : [null]) {
      const li = document.createElement("li");
      li.textContent = a ? `${a.received_at} ${a.status} ${a.name} (${a.severity}): ${a.summary}` : "none received";
      alerts.appendChild(li);
    }
    last = { d, now };
    document.body.dataset.live = "1";
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  }

  async function poll() {
    try {
      const r = await fetch("/ops/data.json", { cache: "no-store" });
      if (r.ok) show(await r.json(), Date.now());
      else text("status", "payd answered " + r.status);
    } catch (e) {
      text("status", "payd unreachable");
    }
    setTimeout(poll, EVERY_MS);
  }
  poll();
})();
