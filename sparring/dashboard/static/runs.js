// The runs page: sort by a column (click its header), filter by any text in a row,
// tick runs to compare, and refresh each run's status, matches, size and last
// update every 5 s from /api/runs. Run text is only ever set with textContent.
"use strict";
(() => {
  const table = document.getElementById("runs");
  const body = table.tBodies[0];
  const headers = Array.from(table.tHead.rows[0].cells);
  const filter = document.getElementById("filter");
  const shownCount = document.getElementById("shown-count");

  // A row with a colspan (an unreadable store) has fewer cells: find a column's cell by its header's position.
  const cellAt = (row, index) => {
    let column = 0;
    for (const cell of row.cells) {
      if (column <= index && index < column + cell.colSpan) return cell;
      column += cell.colSpan;
    }
    return row.cells[row.cells.length - 1];
  };

  function sortBy(index, direction) {
    const type = headers[index].dataset.type;
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = cellValueAt(a, index, type), y = cellValueAt(b, index, type);
      return (x < y ? -1 : x > y ? 1 : 0) * direction;
    });
    rows.forEach((row) => body.appendChild(row));
    headers.forEach((h, i) => h.setAttribute("aria-sort", i === index ? (direction > 0 ? "ascending" : "descending") : "none"));
  }
  function cellValueAt(row, index, type) {
    const cell = cellAt(row, index);
    const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
    return type === "number" ? Number(raw) || 0 : raw.toLowerCase();
  }

  headers.forEach((header, index) => header.addEventListener("click", () => {
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    sortBy(index, ascending ? 1 : -1);
  }));

  function applyFilter() {
    const terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of body.rows) {
      const text = row.textContent.toLowerCase();
      const keep = terms.every((term) => text.includes(term));
      row.hidden = !keep;
      shown += keep;
    }
    shownCount.textContent = terms.length ? `${shown} of ${body.rows.length} shown` : "";
  }
  filter.addEventListener("input", applyFilter);

  // Compare: each row's checkbox belongs to #compare-form, which asks /compare?run=...&run=...;
  // the button counts the ticked runs and waits for two. Counted again on pageshow: going
  // back to the page can bring the ticks back.
  const compareButton = document.getElementById("compare-selected");
  function countPicked() {
    const picked = body.querySelectorAll("input.pick:checked").length;
    compareButton.disabled = picked < 2;
    compareButton.textContent = picked ? `compare selected (${picked})` : "compare selected";
  }
  body.addEventListener("change", countPicked);
  window.addEventListener("pageshow", countPicked);
  countPicked();

  const sizeText = (n) => {
    const units = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return i ? `${n.toFixed(1)} ${units[i]}` : `${n} B`;
  };
  const agoText = (at) => {
    const s = Math.max(0, Date.now() / 1000 - at);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} days ago`;
  };

  async function refresh() {
    let runs;
    try {
      const response = await fetch("/api/runs", { cache: "no-store" });
      if (!response.ok) return;
      runs = await response.json();
    } catch (error) {
      return;  // the server stopped: keep what the page shows
    }
    const rows = new Map(Array.from(body.rows).map((row) => [row.dataset.name, row]));
    let added = 0;
    for (const run of runs) {
      const row = rows.get(run.name);
      if (!row) { added += 1; continue; }
      const set = (column, text, sort) => {
        const cell = row.querySelector(`[data-col="${column}"]`);
        if (!cell) return;
        cell.textContent = text;
        if (sort !== undefined) cell.dataset.sort = String(sort);
      };
      const badge = document.createElement("span");
      badge.className = `badge ${run.status}`;
      badge.textContent = run.status;
      const status = row.querySelector('[data-col="status"]');
      if (status) status.replaceChildren(badge);
      row.className = `status-${run.status}`;
      if (!run.error) {
        set("matches", String(run.matches), run.matches);
        set("progress", run.progress);
      }
      set("size", sizeText(run.size), run.size);
      set("modified", agoText(run.modified), run.modified);
    }
    const news = document.getElementById("news");
    news.hidden = added === 0;
    news.textContent = added ? `${added} new run${added === 1 ? "" : "s"}: reload to see them.` : "";
    applyFilter();
  }

  sortBy(headers.length - 1, -1);  // the most recently updated first
  setInterval(refresh, 5000);
})();
