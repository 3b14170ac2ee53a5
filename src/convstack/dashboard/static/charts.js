// convstack's live page: line charts on <canvas>, drawn here (no chart library).
// drawChart(canvas, series, options): series are {x, y, color, width, alpha, dash, marker}
// with x in epochs; options are {xMax, yMin, format(value, step)}.
"use strict";

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const unit = raw / power;
  return (unit < 1.5 ? 1 : unit < 3.5 ? 2 : unit < 7.5 ? 5 : 10) * power;
}

function drawChart(canvas, series, options) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight; // CSS sizes: the bitmap follows them
  if (!width) return;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio); // a new bitmap only when the size changed
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const left = 58, right = 10, top = 8, bottom = 24;
  const plotW = width - left - right, plotH = height - top - bottom;
  let x1 = 1, y0 = Infinity, y1 = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.x.length; i++) {
      const y = s.y[i];
      if (y === null || y === undefined || !isFinite(y)) continue;
      if (s.x[i] > x1) x1 = s.x[i];
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  if (options.xMax && options.xMax > x1) x1 = options.xMax;
  g.font = "11px system-ui, sans-serif";
  g.strokeStyle = "#ccc";
  g.strokeRect(left, top, plotW, plotH);
  if (y0 === Infinity) {
    g.fillStyle = "#999";
    g.fillText("no data yet", left + 10, top + 20);
    return;
  }
  if (options.yMin !== undefined) y0 = Math.min(y0, options.yMin);
  if (y1 === y0) { y1 += Math.abs(y1) * 0.1 || 1; y0 -= Math.abs(y0) * 0.1 || 0; }
  const pad = (y1 - y0) * 0.05;
  y1 += pad; if (options.yMin === undefined) y0 -= pad;
  const px = (x) => left + (x / x1) * plotW;
  const py = (y) => top + (1 - (y - y0) / (y1 - y0)) * plotH;
  // grid and ticks
  g.fillStyle = "#666";
  g.strokeStyle = "#eee";
  const yStep = niceStep(y1 - y0, 5);
  for (let y = Math.ceil(y0 / yStep) * yStep; y <= y1; y += yStep) {
    g.beginPath(); g.moveTo(left, py(y)); g.lineTo(left + plotW, py(y)); g.stroke();
    g.textAlign = "right"; g.fillText(options.format(y, yStep), left - 5, py(y) + 4);
  }
  const xStep = Math.max(1, niceStep(x1, 8));
  for (let x = 0; x <= x1 + 1e-9; x += xStep) {
    g.beginPath(); g.moveTo(px(x), top); g.lineTo(px(x), top + plotH); g.stroke();
    g.textAlign = "center"; g.fillText(String(Math.round(x)), px(x), top + plotH + 15);
  }
  g.save();
  g.beginPath(); g.rect(left, top, plotW, plotH); g.clip();
  for (const s of series) drawSeries(g, s, px, py, plotW);
  g.restore();
}

function drawSeries(g, s, px, py, plotW) {
  g.strokeStyle = s.color; g.fillStyle = s.color;
  g.globalAlpha = s.alpha || 1;
  g.lineWidth = s.width || 1.5;
  g.setLineDash(s.dash || []);
  const n = s.x.length;
  g.beginPath();
  if (n > 2 * plotW) {
    // more points than pixels: per pixel column, a stroke from its lowest to its highest value
    let column = null, low = 0, high = 0;
    const flush = () => { if (column !== null) { g.lineTo(column, py(low)); g.lineTo(column, py(high)); } };
    for (let i = 0; i < n; i++) {
      const y = s.y[i];
      if (y === null || !isFinite(y)) continue;
      const c = Math.round(px(s.x[i]));
      if (c !== column) { flush(); if (column === null) g.moveTo(c, py(y)); column = c; low = high = y; }
      else { low = Math.min(low, y); high = Math.max(high, y); }
    }
    flush();
  } else {
    let drawing = false;
    for (let i = 0; i < n; i++) {
      const y = s.y[i];
      if (y === null || y === undefined || !isFinite(y)) { drawing = false; continue; }
      if (drawing) g.lineTo(px(s.x[i]), py(y)); else g.moveTo(px(s.x[i]), py(y));
      drawing = true;
    }
  }
  g.stroke();
  g.setLineDash([]);
  if (s.marker) {
    for (let i = 0; i < n; i++) {
      const y = s.y[i];
      if (y === null || y === undefined || !isFinite(y)) continue;
      g.beginPath();
      if (s.marker === "square") g.rect(px(s.x[i]) - 3, py(y) - 3, 6, 6);
      else g.arc(px(s.x[i]), py(y), 3, 0, 2 * Math.PI);
      g.fill();
    }
  }
  g.globalAlpha = 1;
}
