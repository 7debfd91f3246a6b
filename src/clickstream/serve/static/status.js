// The pipeline status page: /api/status once, then the `status` event of the SSE stream every second.
"use strict";

function cell(text, cls) {
  return CS.el("td", cls ? { class: cls } : {}, text);
}

function fillBody(table, rows, columns, emptyText) {
  const body = document.querySelector(`#${table} tbody`);
  body.replaceChildren();
  if (!rows.length) {
    body.append(CS.el("tr", {}, ""));
    body.firstChild.append(CS.el("td", { colspan: String(columns), class: "none" }, emptyText));
    return;
  }
  body.append(...rows);
}

function queryRow(name, q) {
  const row = CS.el("tr", { "data-query": name });
  const errors = q.errors ?? [];
  row.append(
    cell(name, "mono"),
    cell(CS.fmtInt(q.records_in), "num"),
    cell(CS.fmtRate(q.records_in_per_s), "num"),
    cell(CS.fmtInt(q.records_out), "num"),
    cell(CS.fmtRate(q.records_out_per_s), "num"),
    cell(CS.fmtWatermark(q.watermark), "mono"),
    cell(CS.fmtInt(q.late_dropped), q.late_dropped ? "num warnc" : "num"),
    cell(CS.fmtInt(q.malformed), q.malformed ? "num warnc" : "num"),
    cell(q.state_rows === undefined ? "—" : CS.fmtInt(q.state_rows), "num"),
    cell(q.lag === undefined ? "—" : CS.fmtInt(q.lag), q.lag ? "num warnc" : "num"),
    cell(errors.length ? errors.join("\n") : "none", errors.length ? "bad" : ""),
  );
  return row;
}

function sourceRow(name, s) {
  const row = CS.el("tr", { "data-source": name });
  const state = s.exhausted === undefined ? "—" : s.exhausted ? "finished" : "reading";
  row.append(cell(name, "mono"), cell(CS.fmtWatermark(s.watermark), "mono"), cell(state));
  return row;
}

function resultRow(name, count, estimated) {
  const row = CS.el("tr", { "data-table": name });
  // over 100,000 rows the server estimates from the rowid range rather than count them all
  row.append(cell(name, "mono"), cell((estimated ? "≈ " : "") + CS.fmtInt(count), "num"));
  return row;
}

function showJob(status) {
  const late = Object.values(status.queries ?? {}).reduce((sum, q) => sum + (q.late_dropped ?? 0), 0);
  document.getElementById("job-state").textContent = status.attached ? "attached" : "no job attached";
  document.getElementById("job-started").textContent =
    status.started ? CS.utc(status.started * 1000) : "—";
  document.getElementById("job-uptime").textContent = status.attached ? CS.fmtDuration(status.uptime_s) : "—";
  document.getElementById("job-late").textContent = status.attached ? CS.fmtInt(late) : "—";
  document.getElementById("no-job").hidden = status.attached;
  const error = document.getElementById("status-error");
  error.hidden = !status.error;
  error.textContent = status.error ?? "";
}

function render(status) {
  document.getElementById("status").dataset.attached = String(status.attached);
  showJob(status);
  const queries = Object.entries(status.queries ?? {}).sort(([a], [b]) => a.localeCompare(b));
  fillBody("queries", queries.map(([name, q]) => queryRow(name, q)), 11,
           status.attached ? "The job has no queries." : "No job attached.");
  const sources = Object.entries(status.sources ?? {}).sort(([a], [b]) => a.localeCompare(b));
  fillBody("sources", sources.map(([name, s]) => sourceRow(name, s)), 3, "No sources reported.");
  const results = Object.entries(status.results ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const estimated = new Set(status.results_estimated ?? []);
  fillBody("results", results.map(([name, n]) => resultRow(name, n, estimated.has(name))), 2,
           status.results_error ?? "No result tables yet.");
  document.getElementById("updated").textContent = `updated ${CS.clock()}`;
}

// Records in, late and malformed per second over time: from the status events this page receives
// (one a second), the last HISTORY_POINTS of them.
const HISTORY_POINTS = 600;

class History {
  constructor(section) {
    this.section = section;
    this.previous = null;
    const series = [["records in/s", "#2563eb"], ["late/s", "#d97706"], ["malformed/s", "#dc2626"]];
    this.chart = new Chart(section.querySelector("canvas"), {
      type: "line",
      data: { labels: [], datasets: series.map(([label, color], i) => ({
        label, data: [], borderColor: color, backgroundColor: color, borderWidth: 2, pointRadius: 0,
        tension: 0.2, yAxisID: i ? "y2" : "y" })) },
      options: {
        animation: false, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { maxTicksLimit: 8, maxRotation: 0 }, grid: { display: false } },
          y: { beginAtZero: true, title: { display: true, text: "records in/s" } },
          y2: { beginAtZero: true, position: "right", title: { display: true, text: "late, malformed /s" },
                grid: { display: false } },
        },
      },
    });
  }

  add(status) {
    if (!status.attached) return;
    const queries = Object.values(status.queries ?? {});
    const sum = (key) => queries.reduce((total, q) => total + (q[key] ?? 0), 0);
    const now = { t: status.now, late: sum("late_dropped"), malformed: sum("malformed") };
    const previous = this.previous;
    this.previous = now;
    if (!previous || now.t <= previous.t) return;
    const seconds = now.t - previous.t;
    const rate = Math.max(0, ...queries.map((q) => q.records_in_per_s ?? 0));
    const values = [rate, (now.late - previous.late) / seconds, (now.malformed - previous.malformed) / seconds];
    const { labels, datasets } = this.chart.data;
    labels.push(new Date(now.t * 1000).toLocaleTimeString("en-GB", { hour12: false }));
    values.forEach((value, i) => datasets[i].data.push(Math.max(0, value)));
    if (labels.length > HISTORY_POINTS) {
      labels.shift();
      datasets.forEach((d) => d.data.shift());
    }
    this.chart.update("none");
    this.section.dataset.points = String(labels.length);
  }
}

const history = new History(document.getElementById("history"));
CS.getJSON("/api/status").then(render).catch(() => {});
CS.connect({ onStatus: (status) => { render(status); history.add(status); } });
