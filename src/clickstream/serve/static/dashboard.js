// The dashboard: the seed's three Kibana panels, redrawn whenever the SSE stream says their table
// changed. Each panel sets data-state (loading|missing|empty|ready|error) and data-points (points
// or bars drawn) so tests and users can tell what is shown.
"use strict";

const TOP_CATEGORIES = 10;
const COLORS = { blue: "#2563eb", green: "#059669", orange: "#ea580c" };

// Kibana's panels: x bucket -> MAX(y); the same aggregation is done here so several rows per bucket
// (e.g. one cumulative_uv row per date for the same time_str) collapse as they did there.
const PANELS = {
  hourly: {
    query: "order_by=hour_of_day&limit=10000",
    series(rows) {
      const values = new Array(24).fill(null);
      for (const row of rows) {
        const hour = Number(row.hour_of_day);
        if (Number.isInteger(hour) && hour >= 0 && hour < 24) {
          values[hour] = Math.max(values[hour] ?? -Infinity, Number(row.buy_cnt));
        }
      }
      const labels = values.map((_, hour) => String(hour).padStart(2, "0"));
      return { labels, values, points: values.filter((v) => v !== null).length };
    },
    config: () => chartConfig("line", COLORS.blue, "purchases", "hour of day", {
      fill: true, backgroundColor: "rgba(37, 99, 235, 0.18)", spanGaps: false,
    }),
  },
  uv: {
    query: "order_by=time_str&limit=100000",
    series(rows) {
      // The curve of the latest day: a few early events stamped just before midnight would
      // otherwise add a stray point from the day before.
      const latest = rows.reduce((d, row) => (row.date_str > d ? row.date_str : d), "");
      const byTime = new Map();
      for (const row of rows) {
        if (row.date_str !== undefined && row.date_str !== latest) continue;
        const key = String(row.time_str);
        byTime.set(key, Math.max(byTime.get(key) ?? -Infinity, Number(row.uv)));
      }
      const labels = [...byTime.keys()].sort();
      return { labels, values: labels.map((t) => byTime.get(t)), points: labels.length };
    },
    config: () => {
      const config = chartConfig("line", COLORS.green, "unique visitors", "time of day", { fill: false });
      config.options.scales.x.ticks = { maxRotation: 0, autoSkip: true, maxTicksLimit: 12 };
      return config;
    },
    // A whole day is 144 points: keep each one visible without turning the line into beads.
    pointRadius: (points) => (points > 48 ? 1.5 : 2.5),
  },
  categories: {
    query: `order_by=-buy_cnt,category_name&limit=${TOP_CATEGORIES}`,
    series(rows) {
      const labels = rows.map((row) => row.category_name ?? "(no category)");
      return { labels, values: rows.map((row) => Number(row.buy_cnt)), points: rows.length };
    },
    config: () => {
      const config = chartConfig("bar", COLORS.orange, "purchases", null, {
        backgroundColor: "rgba(234, 88, 12, 0.78)", borderRadius: 3, maxBarThickness: 26,
      });
      config.options.indexAxis = "y";
      config.options.scales = {
        x: { beginAtZero: true, grid: { color: "#eef1f5" }, ticks: { precision: 0 } },
        y: { grid: { display: false } },
      };
      return config;
    },
  },
};

function chartConfig(type, color, yLabel, xLabel, dataset) {
  return {
    type,
    data: { labels: [], datasets: [{ label: yLabel, data: [], borderColor: color, borderWidth: 2,
                                     tension: 0.25, pointRadius: 2, ...dataset }] },
    options: {
      animation: false, // live data: redraw at once, and let tests read a finished chart
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { display: false } },
      scales: {
        x: { title: { display: Boolean(xLabel), text: xLabel ?? "" }, grid: { display: false } },
        y: { beginAtZero: true, title: { display: true, text: yLabel }, grid: { color: "#eef1f5" },
             ticks: { precision: 0 } },
      },
    },
  };
}

class Panel {
  constructor(element) {
    this.element = element;
    this.table = element.dataset.table;
    this.spec = PANELS[element.dataset.chart];
    this.chart = new Chart(element.querySelector("canvas"), this.spec.config());
    this.busy = false;
    this.again = false;
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
      body = await CS.getJSON(`/api/tables/${encodeURIComponent(this.table)}?${this.spec.query}`);
    } catch (error) {
      if (error.status === 404) return this.draw(this.spec.series([]), "missing", null);
      this.setState("error", `Could not load ${this.table}: ${error.message}`);
      return;
    }
    this.draw(this.spec.series(body.rows), body.rows.length ? "ready" : "empty", body.total);
  }

  draw(series, state, total) {
    const dataset = this.chart.data.datasets[0];
    this.chart.data.labels = series.labels;
    dataset.data = series.values;
    if (this.spec.pointRadius) dataset.pointRadius = this.spec.pointRadius(series.points);
    this.chart.update("none");
    const messages = {
      missing: `Waiting for the pipeline to create ${this.table}…`,
      empty: `No rows in ${this.table} yet`,
    };
    const points = state === "ready" ? series.points : 0;
    this.element.dataset.points = String(points);
    this.setState(state, messages[state] ?? "");
    const rows = total === null ? "no table" : `${CS.fmtInt(total)} rows`;
    this.element.querySelector("[data-role=meta]").textContent = `${rows} · updated ${CS.clock()}`;
  }

  setState(state, message) {
    this.element.querySelector("[data-role=empty]").textContent = message;
    this.element.dataset.state = state;
  }
}

function showJobSummary(status) {
  const target = document.getElementById("job-summary");
  if (!status.attached) {
    target.textContent = "no job attached";
    return;
  }
  const queries = Object.values(status.queries ?? {});
  // Queries usually share one source, so the input rate is the busiest query's, not their sum.
  const rate = Math.max(0, ...queries.map((q) => q.records_in_per_s ?? 0));
  const watermark = Math.max(...queries.map((q) => q.watermark ?? -Infinity));
  target.textContent = `${queries.length} queries · ${CS.fmtRate(rate)} rec/s in · watermark ${
    CS.fmtWatermark(watermark)}`;
}

function main() {
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#4b5563";
  const panels = [...document.querySelectorAll("[data-chart]")].map((element) => new Panel(element));
  const refreshAll = () => panels.forEach((panel) => panel.refresh());
  refreshAll();
  CS.connect({
    onOpen: refreshAll,
    onChange: (tables) => panels.filter((p) => tables.includes(p.table)).forEach((p) => p.refresh()),
    onStatus: showJobSummary,
  });
}

main();
