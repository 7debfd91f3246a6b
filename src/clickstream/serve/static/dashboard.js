// The dashboard: the panels /api/dashboard describes (a pipeline's dashboard file, or one inferred
// from the result tables), each redrawn when the SSE stream says its table changed. Each panel sets
// data-state (loading|missing|empty|ready|error) and data-points (x values, bars, rows or tiles
// drawn) so tests and users can tell what is shown.
"use strict";

const PALETTE = ["#2563eb", "#059669", "#ea580c", "#7c3aed", "#db2777", "#0891b2", "#ca8a04", "#64748b"];
const RANGES = { all: null, "1h": 3600e3, "6h": 6 * 3600e3, "24h": 24 * 3600e3, "7d": 7 * 24 * 3600e3 };
const view = { range: "all", refresh: "live" }; // the page's controls

// --- turning rows into what a panel draws ----------------------------------------------------

function numeric(value) {
  return value === null || value === undefined || value === "" ? null : Number(value);
}

// Several rows for one x of one series collapse as Kibana's buckets did: max, sum, last or count.
function combine(previous, value, aggregate) {
  if (aggregate === "count") return (previous ?? 0) + 1;
  if (value === null || Number.isNaN(value)) return previous ?? null;
  if (previous === null || previous === undefined) return value;
  if (aggregate === "sum") return previous + value;
  if (aggregate === "last") return value;
  return Math.max(previous, value);
}

function compareX(a, b) {
  const na = Number(a);
  const nb = Number(b);
  if (!Number.isNaN(na) && !Number.isNaN(nb) && a !== "" && b !== "") return na - nb;
  return String(a).localeCompare(String(b));
}

// An x value that is a point in time (an ISO date or timestamp string), as milliseconds.
function timeOf(value) {
  if (typeof value !== "string" || !/^\d{4}-\d{2}-\d{2}/.test(value)) return null;
  const ms = Date.parse(value.length === 10 ? value : value.replace(" ", "T"));
  return Number.isNaN(ms) ? null : ms;
}

// The time-range control keeps the rows whose x lies within the range before the latest x.
function inRange(rows, x) {
  const span = RANGES[view.range];
  if (!span || !x) return rows;
  const times = rows.map((row) => timeOf(row[x]));
  if (times.some((t) => t === null)) return rows; // not a time axis: the range does not apply
  const latest = Math.max(...times);
  return rows.filter((_, i) => times[i] >= latest - span);
}

function chartSeries(spec, rows) {
  const groups = new Map(); // series name -> Map(x -> value)
  const xs = new Set();
  for (const row of rows) {
    const x = row[spec.x];
    if (x === null || x === undefined) continue;
    xs.add(x);
    const names = spec.split ? [String(row[spec.split] ?? "(none)")] : spec.y;
    for (const name of names) {
      const column = spec.split ? spec.y[0] : name;
      if (!groups.has(name)) groups.set(name, new Map());
      const series = groups.get(name);
      series.set(x, combine(series.get(x), numeric(row[column]), spec.aggregate));
    }
  }
  const labels = [...xs].sort(compareX);
  // Split series newest first (the latest day leads the legend); columns in the file's order.
  const names = spec.split ? [...groups.keys()].sort().reverse() : spec.y.filter((n) => groups.has(n));
  const datasets = names.map((name) => ({ name, values: labels.map((x) => groups.get(name).get(x) ?? null) }));
  return { labels, datasets, points: labels.length };
}

function ranked(spec, rows) {
  const totals = new Map();
  for (const row of rows) {
    const label = row[spec.x] ?? "(none)";
    totals.set(label, combine(totals.get(label), numeric(row[spec.y[0]]), spec.aggregate));
  }
  const top = [...totals].sort((a, b) => b[1] - a[1] || compareX(a[0], b[0])).slice(0, spec.top ?? 10);
  return { labels: top.map(([label]) => String(label)), values: top.map(([, value]) => value) };
}

function reduce(rows, column, how) {
  const values = rows.map((row) => numeric(row[column])).filter((v) => v !== null && !Number.isNaN(v));
  if (how === "count") return rows.length;
  if (!values.length) return null;
  if (how === "last") return values[values.length - 1];
  if (how === "max") return Math.max(...values);
  return values.reduce((a, b) => a + b, 0);
}

function fmtNumber(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? CS.fmtInt(value) : value.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

// --- panels -----------------------------------------------------------------------------------

class Panel {
  constructor(spec, grid) {
    this.spec = spec;
    this.table = spec.table;
    this.element = this.build(grid);
    this.body = this.element.querySelector("[data-role=body]");
    this.busy = false;
    this.again = false;
  }

  build(grid) {
    const { spec } = this;
    const section = CS.el("section", {
      class: `panel kind-${spec.kind}${spec.wide ? " wide" : ""}`,
      id: `panel-${spec.id}`,
      "data-chart": spec.id,
      "data-table": spec.table,
      "data-kind": spec.kind,
      "data-state": "loading",
      "data-points": "0",
    });
    const header = CS.el("header");
    header.append(CS.el("h2", {}, spec.title));
    const sub = CS.el("span", { class: "sub" }, spec.description ? `${spec.description} · ` : "");
    sub.append(CS.el("code", {}, spec.table));
    header.append(sub, CS.el("span", { class: "meta", "data-role": "meta" }));
    const box = CS.el("div", { class: this.boxClass(), "data-role": "body" });
    section.append(header, box);
    box.append(CS.el("div", { class: "empty", "data-role": "empty" }, "Loading…"));
    grid.append(section);
    return section;
  }

  boxClass() {
    return "chart-box";
  }

  query() {
    const { spec } = this;
    const order = spec.order_by ?? (spec.x && ["line", "area", "bar"].includes(spec.kind) ? spec.x : null);
    return `limit=${spec.limit}${order ? `&order_by=${encodeURIComponent(order)}` : ""}`;
  }

  // Coalesces bursts of change events: at most one fetch in flight, one more queued.
  async refresh() {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.again = false;
        await this.load();
      } while (this.again);
    } finally {
      this.busy = false;
    }
  }

  async load() {
    let body;
    try {
      body = await CS.getJSON(`/api/tables/${encodeURIComponent(this.table)}?${this.query()}`);
    } catch (error) {
      if (error.status === 404) return this.show([], "missing", null);
      this.setState("error", `Could not load ${this.table}: ${error.message}`);
      return;
    }
    this.columns = body.columns.map((c) => c.name);
    this.show(body.rows, body.rows.length ? "ready" : "empty", body.total);
  }

  show(rows, state, total) {
    const points = this.draw(rows);
    const shown = state === "ready" ? points : 0;
    this.element.dataset.points = String(shown);
    const messages = {
      missing: `Waiting for the pipeline to create ${this.table}…`,
      empty: `No rows in ${this.table} yet`,
      ready: shown ? "" : "No rows in the selected time range",
    };
    this.setState(state, messages[state] ?? "");
    const count = total === null ? "no table" : `${CS.fmtInt(total)} rows`;
    this.element.querySelector("[data-role=meta]").textContent = `${count} · updated ${CS.clock()}`;
  }

  setState(state, message) {
    this.element.querySelector("[data-role=empty]").textContent = message;
    this.element.dataset.state = state;
  }
}

class ChartPanel extends Panel {
  constructor(spec, grid) {
    super(spec, grid);
    this.chart = new Chart(this.body.appendChild(CS.el("canvas", { "aria-label": spec.title })), this.config());
  }

  // The newest `limit` rows (a long run has more than a chart holds): x descending, and the newest
  // split value (day) first once the table is known to have that column; chartSeries puts the
  // rows back in order.
  query() {
    const { spec } = this;
    if (spec.order_by || !spec.x) return super.query();
    const order = this.splitOrdered() ? `-${spec.split},-${spec.x}` : `-${spec.x}`;
    return `limit=${spec.limit}&order_by=${encodeURIComponent(order)}`;
  }

  splitOrdered() {
    return Boolean(this.spec.split && this.columns?.includes(this.spec.split));
  }

  async load() {
    const ordered = this.splitOrdered();
    await super.load();
    if (this.splitOrdered() !== ordered) await super.load(); // the first rows told the columns
  }

  config() {
    const { spec } = this;
    const type = spec.kind === "area" ? "line" : spec.kind;
    return {
      type,
      data: { labels: [], datasets: [] },
      options: {
        animation: false, // live data: redraw at once, and let tests read a finished chart
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { display: Boolean(spec.split) || spec.y.length > 1 } },
        scales: {
          x: { title: { display: true, text: spec.x }, grid: { display: false },
               ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 12 } },
          y: { beginAtZero: true, title: { display: spec.y.length === 1 && !spec.split, text: spec.y[0] },
               grid: { color: "#eef1f5" } },
        },
      },
    };
  }

  draw(rows) {
    const { spec } = this;
    const series = chartSeries(spec, inRange(rows, spec.x));
    this.chart.data.labels = series.labels;
    this.chart.data.datasets = series.datasets.map((s, i) => {
      const color = PALETTE[i % PALETTE.length];
      return {
        label: s.name,
        data: s.values,
        borderColor: color,
        backgroundColor: spec.kind === "bar" ? `${color}cc` : `${color}2e`,
        fill: spec.kind === "area",
        borderWidth: 2,
        tension: 0.25,
        // Many points: keep each visible without turning the line into beads.
        pointRadius: series.points > 96 ? 0 : series.points > 48 ? 1.5 : 2.5,
        spanGaps: false,
        maxBarThickness: 28,
      };
    });
    this.chart.update("none");
    return series.points;
  }
}

class RankPanel extends Panel {
  constructor(spec, grid) {
    super(spec, grid);
    const canvas = this.body.appendChild(CS.el("canvas", { "aria-label": spec.title }));
    this.chart = new Chart(canvas, spec.kind === "pie" ? this.pieConfig() : this.barConfig());
  }

  query() {
    const { spec } = this;
    return `limit=${spec.limit}&order_by=${encodeURIComponent(spec.order_by ?? `-${spec.y[0]},${spec.x}`)}`;
  }

  barConfig() {
    return {
      type: "bar",
      data: { labels: [], datasets: [{ label: this.spec.y[0], data: [], backgroundColor: "#ea580cc7",
                                       borderRadius: 3, maxBarThickness: 26 }] },
      options: {
        animation: false, maintainAspectRatio: false, indexAxis: "y",
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, grid: { color: "#eef1f5" } }, y: { grid: { display: false } } },
      },
    };
  }

  pieConfig() {
    return {
      type: "doughnut",
      data: { labels: [], datasets: [{ label: this.spec.y[0], data: [], backgroundColor: PALETTE }] },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { position: "right" } } },
    };
  }

  draw(rows) {
    const { labels, values } = ranked(this.spec, rows);
    this.chart.data.labels = labels;
    this.chart.data.datasets[0].data = values;
    this.chart.update("none");
    return labels.length;
  }
}

class TablePanel extends Panel {
  boxClass() {
    return "table-box";
  }

  draw(rows) {
    const columns = this.spec.columns.length ? this.spec.columns : Object.keys(rows[0] ?? {});
    const table = CS.el("table", { class: "data" });
    const head = table.createTHead().insertRow();
    for (const column of columns) head.append(CS.el("th", {}, column));
    const body = table.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      for (const column of columns) {
        const value = row[column];
        tr.append(CS.el("td", { class: typeof value === "number" ? "num" : "" }, fmtNumber(value ?? null)));
      }
    }
    this.body.querySelector("table")?.remove();
    this.body.append(table);
    return rows.length;
  }
}

class KpiPanel extends Panel {
  boxClass() {
    return "kpi-box";
  }

  draw(rows) {
    this.body.querySelectorAll(".tile").forEach((tile) => tile.remove());
    let shown = 0;
    for (const column of this.spec.y) {
      const value = reduce(rows, column, this.spec.reduce);
      const tile = CS.el("div", { class: "tile", "data-column": column, "data-value": String(value ?? "") });
      const label = this.spec.labels[this.spec.y.indexOf(column)] ?? column.replaceAll("_", " ");
      tile.append(CS.el("div", { class: "label" }, label),
                  CS.el("div", { class: "value" }, fmtNumber(value)));
      this.body.append(tile);
      if (value !== null) shown += 1;
    }
    return shown;
  }
}

class FunnelPanel extends Panel {
  boxClass() {
    return "funnel-box";
  }

  draw(rows) {
    this.body.querySelectorAll(".stage").forEach((stage) => stage.remove());
    const stages = this.spec.y.map((column) => ({ column, value: reduce(rows, column, "sum") ?? 0 }));
    const first = stages[0]?.value || 0;
    stages.forEach(({ column, value }, i) => {
      const share = first ? value / first : 0;
      const step = i && stages[i - 1].value ? value / stages[i - 1].value : null;
      const stage = CS.el("div", { class: "stage", "data-column": column, "data-value": String(value) });
      const bar = CS.el("div", { class: "bar" });
      bar.style.width = `${Math.max(2, share * 100)}%`;
      const text = `${column.replaceAll("_", " ")} · ${fmtNumber(value)}${
        step === null ? "" : ` · ${(step * 100).toFixed(1)}% of the step before`}`;
      stage.append(bar, CS.el("span", {}, text));
      this.body.append(stage);
    });
    return rows.length ? stages.length : 0;
  }
}

const KINDS = {
  line: ChartPanel, area: ChartPanel, bar: ChartPanel, hbar: RankPanel, pie: RankPanel,
  table: TablePanel, alerts: TablePanel, kpi: KpiPanel, funnel: FunnelPanel,
};

// --- the page ---------------------------------------------------------------------------------

// The demo's scenario whose dashboard this page shows (its simulation names the dashboard), or null.
function shownScenario(status, dashboardName) {
  const found = Object.entries(status.simulations ?? {}).find(([, s]) => s.dashboard === dashboardName);
  return found ? { key: found[0], ...found[1] } : null;
}

function showJobSummary(status, dashboardName) {
  const target = document.getElementById("job-summary");
  if (!status.attached) {
    target.textContent = "no job attached";
    return;
  }
  // A scenario's tab speaks of its own job: its queries (named `<scenario>/...`), its input rate and
  // the simulated time it has reached; scenarios simulate different dates, and their jobs progress
  // at their own pace.
  const scenario = shownScenario(status, dashboardName);
  const queries = Object.entries(status.queries ?? {})
    .filter(([name]) => !scenario || name.startsWith(`${scenario.key}/`))
    .map(([, query]) => query);
  // Queries usually share one source, so the input rate is the busiest query's, not their sum.
  const rate = Math.max(0, ...queries.map((q) => q.records_in_per_s ?? 0));
  const watermark = scenario
    ? scenario.event_time ?? -Infinity
    : Math.max(...queries.map((q) => q.watermark ?? -Infinity));
  target.dataset.eventTime = Number.isFinite(watermark) ? String(watermark) : "";
  // The demo's simulators: still writing, or done (then the rates fall to 0 on purpose).
  const simulations = scenario ? [scenario] : Object.values(status.simulations ?? {});
  const finished = simulations.length > 0 && simulations.every((s) => s.finished);
  document.getElementById("live").dataset.input = simulations.length ? (finished ? "finished" : "live") : "";
  const input = simulations.length ? (finished ? " · simulation finished" : " · simulating") : "";
  target.textContent = `${queries.length} queries · ${CS.fmtRate(rate)} rec/s in · ${
    scenario ? "simulated time" : "event time"} ${CS.fmtWatermark(watermark)}${input}`;
}

// Several dashboards (the demo's scenarios): one tab each.
function showTabs(dashboards, current) {
  const tabs = document.getElementById("tabs");
  if (dashboards.length < 2) return;
  for (const { name, title } of dashboards) {
    const tab = CS.el("a", { href: `/?dashboard=${encodeURIComponent(name)}`, "data-dashboard": name }, title);
    if (name === current) tab.classList.add("active");
    tabs.append(tab);
  }
}

function controls(refreshAll) {
  const range = document.getElementById("range");
  const refresh = document.getElementById("refresh");
  let timer = null;
  range.addEventListener("change", () => {
    view.range = range.value;
    refreshAll();
  });
  refresh.addEventListener("change", () => {
    view.refresh = refresh.value;
    clearInterval(timer);
    if (view.refresh.endsWith("s")) timer = setInterval(refreshAll, Number.parseInt(view.refresh, 10) * 1000);
    if (view.refresh === "live") refreshAll();
  });
}

async function main() {
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#4b5563";
  const chosen = new URLSearchParams(location.search).get("dashboard");
  const address = `/api/dashboard${chosen ? `?name=${encodeURIComponent(chosen)}` : ""}`;
  const [dashboard, list] = await Promise.all([CS.getJSON(address), CS.getJSON("/api/dashboards")]);
  document.getElementById("dashboard-title").textContent = dashboard.title;
  showTabs(list.dashboards, dashboard.name);
  const grid = document.getElementById("panels");
  grid.dataset.inferred = String(dashboard.inferred);
  const panels = [];
  const add = (specs) => {
    for (const spec of specs.filter((s) => !panels.some((p) => p.spec.id === s.id))) {
      panels.push(new (KINDS[spec.kind] ?? TablePanel)(spec, grid));
    }
    grid.dataset.panels = String(panels.length);
  };
  add(dashboard.panels);
  const refreshAll = () => panels.forEach((panel) => panel.refresh());
  controls(refreshAll);
  refreshAll();
  CS.connect({
    onOpen: refreshAll,
    onChange: async (tables) => {
      // A dashboard inferred from the tables grows a panel for each table the job creates.
      if (dashboard.inferred && tables.some((t) => !panels.some((p) => p.table === t))) {
        add((await CS.getJSON(address)).panels);
      }
      if (view.refresh !== "live") return; // paused, or refreshed on a timer
      panels.filter((p) => tables.includes(p.table)).forEach((p) => p.refresh());
    },
    onStatus: (status) => showJobSummary(status, dashboard.name),
  });
}

main();
