// Heat maps of a run's payoff matrix and a population's meta-game: each figure was
// built on the server and sits beside its chart as JSON (a data block, not a script).
"use strict";
(() => {
  for (const block of document.querySelectorAll('script[type="application/json"].figure')) {
    const figure = JSON.parse(block.textContent);
    Plotly.newPlot(document.getElementById(block.dataset.chart), figure.data, figure.layout,
      { displaylogo: false, responsive: true });
  }
})();
