// The compare page: its charts follow the compared runs' stores through training.js's
// followCurves (every 2 s, 304 while no store changed); each answer also refreshes
// every run's status, progress and note in #compared. Run text is only ever set with
// textContent.
"use strict";
(() => {
  const items = new Map(Array.from(document.querySelectorAll("#compared li")).map((li) => [li.dataset.name, li]));

  function showRuns(body) {
    for (const run of body.runs) {
      const item = items.get(run.name);
      if (!item) continue;
      const badge = item.querySelector(".badge");
      badge.className = `badge ${run.status}`;
      badge.textContent = run.status;
      item.querySelector(".progress").textContent = run.progress;
      const note = item.querySelector(".note");
      note.textContent = run.note || "";
      note.classList.toggle("problem", Boolean(run.error));
    }
    const running = body.runs.filter((run) => run.status === "running").length;
    return running ? `live: ${running} of ${body.runs.length} runs running, updates every 2 s`
                   : "none running; still checked every 2 s";
  }

  window.followCurves(document.getElementById("compare"), showRuns);
})();
