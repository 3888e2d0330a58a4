// Charts that follow runs' stores, live: every 2 s the page asks its section's data-api
// for figures (built on the server from the stores) and hands each to plotly.js, which
// redraws only what changed. The server answers 304 while the stores are unchanged.
// The run page follows #training here; the compare page follows #compare through
// window.followCurves (compare.js).
"use strict";
(() => {
  const config = { displaylogo: false, responsive: true };

  // Each figure in a div of its own, in the server's order: a chart that appears later
  // (a metric first logged at step 50) takes its place among the others.
  function draw(charts, figures) {
    figures.forEach((figure, i) => {
      let div = document.getElementById(figure.id);
      if (!div) {
        div = document.createElement("div");
        div.id = figure.id;
        div.className = "chart";
      }
      if (charts.children[i] !== div) charts.insertBefore(div, charts.children[i] || null);
      Plotly.react(div, figure.data, figure.layout, config);
    });
  }

  // `describe(body)` shows what else an answer says and gives the live note's text.
  function followCurves(section, describe) {
    const charts = document.getElementById("charts");
    const empty = document.getElementById("no-curves");
    const note = document.getElementById("live-note");
    let etag = null;

    async function poll() {
      try {
        const headers = etag ? { "If-None-Match": etag } : {};
        const response = await fetch(section.dataset.api, { headers, cache: "no-store" });
        if (response.status === 304) return;
        const body = await response.json();
        if (!response.ok) { note.textContent = body.error || `the server answered ${response.status}`; return; }
        etag = response.headers.get("etag");
        empty.hidden = body.figures.length > 0;
        draw(charts, body.figures);
        note.textContent = describe(body);
      } catch (error) {
        note.textContent = "the dashboard server is not answering; retrying";
      }
    }

    poll();
    setInterval(poll, 2000);
  }
  window.followCurves = followCurves;

  function showStatus(run) {
    const badge = document.getElementById("status");
    if (badge) { badge.className = `badge ${run.status}`; badge.textContent = run.status; }
    const progress = document.getElementById("progress");
    if (progress) progress.textContent = run.progress;
    return run.status === "running" ? "live: updates every 2 s" : `${run.status}; still checked every 2 s`;
  }

  const training = document.getElementById("training");
  if (training) followCurves(training, showStatus);
})();
