// A training run's charts, live: every 2 s the page asks /api/run/<run>/training for
// the run's figures (built on the server from its store) and hands each to plotly.js,
// which redraws only what changed. The server answers 304 while the store is unchanged.
"use strict";
(() => {
  const section = document.getElementById("training");
  const charts = document.getElementById("charts");
  const empty = document.getElementById("no-curves");
  const note = document.getElementById("live-note");
  const config = { displaylogo: false, responsive: true };
  let etag = null;

  function chartDiv(figure) {
    let div = document.getElementById(figure.id);
    if (!div) {
      div = document.createElement("div");
      div.id = figure.id;
      div.className = "chart";
      charts.appendChild(div);
    }
    return div;
  }

  function showStatus(run) {
    const badge = document.getElementById("status");
    if (badge) { badge.className = `badge ${run.status}`; badge.textContent = run.status; }
    const progress = document.getElementById("progress");
    if (progress) progress.textContent = run.progress;
  }

  async function poll() {
    try {
      const headers = etag ? { "If-None-Match": etag } : {};
      const response = await fetch(section.dataset.api, { headers, cache: "no-store" });
      if (response.status === 304) return;
      const body = await response.json();
      if (!response.ok) { note.textContent = body.error || `the server answered ${response.status}`; return; }
      etag = response.headers.get("etag");
      showStatus(body);
      empty.hidden = body.figures.length > 0;
      for (const figure of body.figures) Plotly.react(chartDiv(figure), figure.data, figure.layout, config);
      note.textContent = body.status === "running" ? "live: updates every 2 s" : `${body.status}; still checked every 2 s`;
    } catch (error) {
      note.textContent = "the dashboard server is not answering; retrying";
    }
  }

  poll();
  setInterval(poll, 2000);
})();
