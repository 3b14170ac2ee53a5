// convstack's live page: follows /events (server-sent events) and draws the runs.
// Plain JavaScript, no library: the charts are drawn on <canvas> by charts.js; nothing is fetched
// from anywhere but this server. Text from the runs is only ever set as textContent.
"use strict";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
// At most one redraw every 2 s (the page must not compete with training for the CPU);
// "?interval=SECONDS" in the address asks for another pace (0.2 s at the fastest).
const RENDER_INTERVAL_MS = Math.max(200, 1000 * (Number(new URLSearchParams(location.search).get("interval")) || 2));

const state = { runs: [], records: 0, connection: "connecting", stopped: false, pictureRun: null, followEpoch: true };
// What changed since the last redraw: only those parts of the page are rebuilt.
const dirty = new Set(["all"]);

function newRun(index, name) {
  return {
    index, name, color: COLORS[index % COLORS.length],
    config: null, start: null, ended: false, results: null, report: null,
    steps: { x: [], loss: [], acc: [], lr: [], speed: [] }, lastStep: null,
    epochs: new Map(), summaryPath: null, summaryText: null,
  };
}

// ------------------------------------------------------------------ records
function apply(record) {
  const run = state.runs[record.run];
  if (!run) return;
  state.records += 1;
  switch (record.type) {
    case "config": run.config = record.config; dirty.add("results"); break;
    case "start":
      run.start = record; run.ended = false;
      if (record.summary && record.summary !== run.summaryPath) { run.summaryPath = record.summary; run.summaryText = null; }
      dirty.add("all");
      break;
    case "step": addStep(run, record); dirty.add("steps"); break;
    case "epoch": run.epochs.set(record.epoch, record); dirty.add("epochs"); break;
    case "end": run.ended = true; break;
    case "results": run.results = record.results; dirty.add("results"); break;
    case "report": run.report = record.path; dirty.add("results"); break;
  }
}

function addStep(run, record) {
  const steps = run.steps;
  const x = record.epoch - 1 + (record.batches ? record.batch / record.batches : 0);
  if (steps.x.length && x <= steps.x[steps.x.length - 1]) {
    // a resumed run repeats steps: drop what it redoes
    let keep = steps.x.length;
    while (keep > 0 && steps.x[keep - 1] >= x) keep -= 1;
    for (const key of Object.keys(steps)) steps[key].length = keep;
  }
  steps.x.push(x);
  steps.loss.push(record.loss);
  steps.acc.push(record.acc);
  steps.lr.push(record.lr);
  steps.speed.push(record.images_per_s);
  run.lastStep = record;
}

function epochList(run) {
  return Array.from(run.epochs.values()).sort((a, b) => a.epoch - b.epoch);
}

// --------------------------------------------------------------- formatting
function fixed(value, digits) { return value === null || value === undefined ? "–" : Number(value).toFixed(digits); }
function percent(value) { return value === null || value === undefined ? "–" : (100 * value).toFixed(2) + "%"; }
function exponent(value) { return value === null || value === undefined ? "–" : Number(value).toPrecision(4); }
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h ${String(m).padStart(2, "0")}m` : m ? `${m}m ${String(r).padStart(2, "0")}s` : `${r}s`;
}
function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}
function field(node, run, name) { node.dataset.run = run.index; node.dataset.field = name; return node; }

function status(run) {
  if (run.results) return "done";
  if (run.ended) return "finished";
  if (run.start) return state.stopped ? "stopped" : "training";
  return run.epochs.size ? "history" : "waiting";
}

// --------------------------------------------------------------------- runs
function renderRunTable() {
  const body = document.getElementById("runs-body");
  body.replaceChildren();
  for (const run of state.runs) {
    const epochs = epochList(run);
    const last = epochs[epochs.length - 1] || {};
    const step = run.lastStep;
    const planned = run.start ? run.start.epochs : (run.config && run.config.hyperparameters || {}).epochs;
    const training = status(run) === "training";
    const row = element("tr");
    const name = field(element("td", null, "name"), run, "name");
    name.append(element("span", null, "swatch"), run.name);
    name.firstChild.style.background = run.color;
    row.append(name);
    const cells = [
      ["status", status(run)],
      ["epoch", `${epochs.length}${planned ? "/" + planned : ""}`],
      ["step", step && training ? `${step.batch}/${step.batches || "?"}` : "–"],
      ["step_loss", step ? fixed(step.loss, 4) : "–"],
      ["loss", fixed(last.loss, 4)],
      ["acc", percent(last.acc)],
      ["val_loss", fixed(last.val_loss, 4)],
      ["val_acc", percent(last.val_acc)],
      ["lr", exponent(step && training ? step.lr : last.lr)],
      ["images_per_s", fixed(step && training ? step.images_per_s : last.images_per_s, 0)],
      ["eta", training && step ? duration(step.eta_s) : "–"],
    ];
    for (const [key, text] of cells) row.append(field(element("td", text), run, key));
    body.append(row);
  }
}

// ------------------------------------------------------------------- charts
function epochSeries(run, key, style) {
  const epochs = epochList(run).filter((e) => e[key] !== undefined && e[key] !== null);
  return Object.assign({ x: epochs.map((e) => e.epoch), y: epochs.map((e) => e[key]), color: run.color }, style);
}

function renderCharts() {
  const xMax = Math.max(1, ...state.runs.map((r) => (r.start ? r.start.epochs : 0)));
  const loss = [], acc = [], lr = [], speed = [];
  for (const run of state.runs) {
    const steps = run.steps;
    loss.push({ x: steps.x, y: steps.loss, color: run.color, alpha: 0.35, width: 1 });
    loss.push(epochSeries(run, "loss", { width: 2, marker: "circle" }));
    loss.push(epochSeries(run, "val_loss", { width: 2, marker: "square", dash: [6, 4] }));
    acc.push({ x: steps.x, y: steps.acc, color: run.color, alpha: 0.35, width: 1 });
    acc.push(epochSeries(run, "acc", { width: 2, marker: "circle" }));
    acc.push(epochSeries(run, "val_acc", { width: 2, marker: "square", dash: [6, 4] }));
    lr.push(steps.x.length ? { x: steps.x, y: steps.lr, color: run.color, width: 1.5 } : epochSeries(run, "lr", { marker: "circle" }));
    speed.push(steps.x.length ? { x: steps.x, y: steps.speed, color: run.color, width: 1, alpha: 0.8 }
      : epochSeries(run, "images_per_s", { marker: "circle" }));
  }
  const plain = (v, step) => (step >= 1 ? v.toFixed(0) : v.toFixed(Math.min(6, Math.max(0, -Math.floor(Math.log10(step))))));
  drawChart(document.getElementById("chart-loss"), loss, { xMax, format: plain });
  drawChart(document.getElementById("chart-acc"), acc, { xMax, format: (v, step) => (100 * v).toFixed(step < 0.01 ? 1 : 0) + "%" });
  drawChart(document.getElementById("chart-lr"), lr, { xMax, yMin: 0, format: (v) => v.toPrecision(2) });
  drawChart(document.getElementById("chart-speed"), speed, { xMax, yMin: 0, format: (v) => v.toFixed(0) });
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  for (const run of state.runs) {
    const entry = element("span", null, "entry");
    const swatch = element("span", null, "swatch");
    swatch.style.background = run.color;
    entry.append(swatch, run.name);
    legend.append(entry);
  }
}

// ----------------------------------------------------------------- pictures
function renderPictures() {
  const select = document.getElementById("picture-run");
  if (select.options.length !== state.runs.length) {
    select.replaceChildren(...state.runs.map((run) => { const o = element("option", run.name); o.value = run.index; return o; }));
    const withPictures = state.runs.filter((r) => r.start);
    state.pictureRun = withPictures.length ? withPictures[0].index : 0;
  }
  select.value = String(state.pictureRun);
  const run = state.runs[state.pictureRun];
  const epochs = run ? epochList(run).filter((e) => e.filters || e.feature_maps || e.confusion) : [];
  const slider = document.getElementById("picture-epoch");
  const note = document.getElementById("pictures-note");
  note.textContent = epochs.length ? "" : run && run.epochs.size
    ? "This run recorded no pictures (they come with convstack train --live, or a LiveRecorder callback)."
    : "The pictures appear at the end of the first epoch.";
  if (!epochs.length) return;
  const numbers = epochs.map((e) => e.epoch);
  slider.min = numbers[0]; slider.max = numbers[numbers.length - 1];
  if (state.followEpoch) slider.value = slider.max;
  const shown = epochs.reduce((best, e) => (e.epoch <= Number(slider.value) ? e : best), epochs[0]);
  document.getElementById("picture-epoch-label").textContent = `${shown.epoch} of ${numbers[numbers.length - 1]}`;
  setImage(document.getElementById("filters"), run, shown.filters, shown.timestamp);
  setImage(document.getElementById("feature-maps"), run, shown.feature_maps, shown.timestamp);
  const layer = run.start && run.start.feature_layer;
  document.getElementById("maps-caption").textContent = `feature maps of a fixed sample${layer ? " (" + layer + ")" : ""}`;
  renderConfusion(run, shown);
  renderMisclassified(run, shown);
}

function fileUrl(run, path, stamp) {
  return `/runs/${run.index}/${path.split("/").map(encodeURIComponent).join("/")}${stamp ? "?t=" + stamp : ""}`;
}

function setImage(img, run, path, stamp) {
  const url = path ? fileUrl(run, path, stamp) : "";
  if (img.dataset.url !== url) { img.dataset.url = url; if (url) img.src = url; else img.removeAttribute("src"); }
}

const confusionCache = new Map();
function renderConfusion(run, record) {
  const table = document.getElementById("confusion");
  if (!record.confusion) { table.replaceChildren(); return; }
  const url = fileUrl(run, record.confusion, record.timestamp);
  if (table.dataset.url === url) return;
  const draw = (matrix) => {
    table.dataset.url = url;
    const names = (run.start && run.start.classes) || (run.config && run.config.classes) || [];
    const head = element("tr");
    head.append(element("th", ""));
    matrix.forEach((_, j) => head.append(element("th", names[j] !== undefined ? names[j] : String(j))));
    const rows = [head];
    matrix.forEach((row, i) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      const tr = element("tr");
      tr.append(element("th", names[i] !== undefined ? names[i] : String(i), "true"));
      row.forEach((count, j) => {
        const cell = element("td", String(count));
        cell.dataset.true = i; cell.dataset.predicted = j;
        const share = count / total;
        cell.style.background = i === j ? `rgba(44,160,44,${share})` : `rgba(214,39,40,${Math.min(1, 3 * share)})`;
        if (share > 0.6) cell.style.color = "#fff";
        tr.append(cell);
      });
      rows.push(tr);
    });
    table.replaceChildren(...rows);
  };
  if (confusionCache.has(url)) { draw(confusionCache.get(url)); return; }
  fetch(url).then((r) => (r.ok ? r.json() : Promise.reject(r.status))).then((m) => { confusionCache.set(url, m); draw(m); })
    .catch(() => {});
}

function renderMisclassified(run, record) {
  const box = document.getElementById("misclassified");
  const key = `${run.index}:${record.epoch}:${record.timestamp}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren();
  for (const example of record.misclassified || []) {
    const figure = element("figure");
    if (example.file) { const img = element("img"); img.src = fileUrl(run, example.file, record.timestamp); img.alt = "image " + example.index; figure.append(img); }
    const caption = element("figcaption", `${example.predicted} (true: ${example.true})`);
    figure.append(caption);
    box.append(figure);
  }
  if (!box.childElementCount) box.append(element("p", record.misclassified ? "none" : "–", "note"));
}

// ---------------------------------------------------------- tables and text
function renderHistory() {
  const box = document.getElementById("history");
  box.replaceChildren();
  const columns = [["epoch", (v) => String(v)], ["loss", (v) => fixed(v, 4)], ["acc", percent], ["val_loss", (v) => fixed(v, 4)],
    ["val_acc", percent], ["val_top5", percent], ["lr", exponent], ["time", (v) => fixed(v, 1) + " s"],
    ["images_per_s", (v) => fixed(v, 0)]];
  for (const run of state.runs) {
    const epochs = epochList(run);
    if (!epochs.length) continue;
    const table = element("table", null, "numbers");
    table.dataset.run = run.index;
    table.dataset.table = "history";
    const head = element("tr");
    head.append(element("th", run.name));
    for (const [key] of columns.slice(1)) head.append(element("th", key.replace(/_/g, " ")));
    table.append(head);
    for (const e of epochs) {
      const tr = element("tr");
      for (const [key, format] of columns) {
        const cell = element("td", e[key] === undefined ? "–" : format(e[key]));
        cell.dataset.epoch = e.epoch; cell.dataset.field = key;
        tr.append(cell);
      }
      table.append(tr);
    }
    box.append(table);
  }
}

function renderResults() {
  const box = document.getElementById("results");
  box.replaceChildren();
  for (const run of state.runs) {
    const config = run.config || (run.start && run.start.config) || {};
    const rows = [];
    if (run.results) {
      for (const [key, value] of Object.entries(run.results)) {
        rows.push([key, typeof value !== "number" ? String(value) : /accuracy|top5/.test(key) ? percent(value)
          : Number.isInteger(value) ? String(value) : fixed(value, 4)]);
      }
    }
    if (config.model) rows.push(["model", String(config.model)]);
    if (config.dataset) rows.push(["dataset", String(config.dataset)]);
    for (const [key, value] of Object.entries(config.hyperparameters || {})) rows.push([key, String(value)]);
    if (!rows.length && !run.report) continue;
    const table = element("table");
    table.dataset.run = run.index;
    table.dataset.table = "results";
    const caption = element("caption", run.name);
    table.append(caption);
    for (const [key, value] of rows) {
      const tr = element("tr");
      tr.append(element("th", key), field(element("td", value), run, key));
      table.append(tr);
    }
    box.append(table);
    if (run.report) {
      const link = element("a", `${run.name}: the full report`);
      link.href = fileUrl(run, run.report);
      link.target = "_blank";
      link.rel = "noopener";
      const paragraph = element("p");
      paragraph.append(link);
      box.append(paragraph);
    }
  }
}

function renderSummaries() {
  const box = document.getElementById("summaries");
  for (const run of state.runs) {
    let block = box.querySelector(`pre[data-run="${run.index}"]`);
    if (!run.summaryPath) { if (block) block.remove(); continue; }
    if (!block) {
      block = element("pre");
      block.dataset.run = run.index;
      box.append(block);
    }
    if (run.summaryText === null) {
      run.summaryText = "";
      fetch(fileUrl(run, run.summaryPath)).then((r) => (r.ok ? r.text() : "")).then((text) => {
        run.summaryText = text; block.textContent = `${run.name}\n${text}`;
      }).catch(() => { run.summaryText = null; });
    } else if (run.summaryText) {
      block.textContent = `${run.name}\n${run.summaryText}`;
    }
  }
}

function renderStatus() {
  const badge = document.getElementById("status");
  const training = state.runs.some((r) => status(r) === "training");
  const texts = {
    connecting: "connecting…",
    retrying: "connection lost: retrying…",
    stopped: "server stopped: the page keeps the last values",
    open: training ? "live: training" : "live: watching the folders",
  };
  badge.className = "badge " + (state.connection === "open" ? "live" : "stopped");
  badge.textContent = texts[state.connection];
  document.body.dataset.records = state.records;
}

// ----------------------------------------------------------------- updating
let renderTimer = null, lastRender = 0;
function render() {
  renderTimer = null;
  lastRender = Date.now();
  const all = dirty.has("all"), epochs = all || dirty.has("epochs");
  renderStatus();
  renderRunTable();
  if (epochs || dirty.has("steps")) renderCharts();
  if (epochs || dirty.has("pictures")) renderPictures();
  if (epochs) renderHistory();
  if (all || dirty.has("results")) renderResults();
  if (all) renderSummaries();
  dirty.clear();
  document.body.dataset.rendered = state.records;
}
function renderAll() {
  dirty.add("all");
  clearTimeout(renderTimer);
  render();
}
function scheduleRender() {
  if (renderTimer === null) renderTimer = setTimeout(render, Math.max(0, RENDER_INTERVAL_MS - (Date.now() - lastRender)));
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("hello", (event) => {
    const hello = JSON.parse(event.data);
    state.runs = hello.runs.map((r) => newRun(r.index, r.name));
    state.records = 0;
    state.stopped = false;
    state.connection = "open";
    document.getElementById("picture-run").replaceChildren();
    dirty.add("all");
    scheduleRender();
  });
  source.addEventListener("records", (event) => {
    for (const record of JSON.parse(event.data)) apply(record);
    scheduleRender();
  });
  source.addEventListener("bye", () => {
    source.close();
    state.stopped = true;
    state.connection = "stopped";
    renderAll(); // at once: the last pictures are asked for while the server still answers
  });
  source.onerror = () => {
    if (state.stopped) return;
    // the browser retries by itself (and a new "hello" starts the page over); CLOSED means it gave up
    state.connection = source.readyState === EventSource.CLOSED ? "stopped" : "retrying";
    scheduleRender();
  };
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("picture-run").addEventListener("change", (event) => {
    state.pictureRun = Number(event.target.value);
    state.followEpoch = true;
    dirty.add("pictures");
    render();
  });
  document.getElementById("picture-epoch").addEventListener("input", (event) => {
    state.followEpoch = Number(event.target.value) >= Number(event.target.max);
    dirty.add("pictures");
    render();
  });
  window.addEventListener("resize", () => { dirty.add("all"); scheduleRender(); });
  connect();
});
