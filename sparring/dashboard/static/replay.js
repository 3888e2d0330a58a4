// Step through a match: one section per turn, ← → to move, Home / End for the first
// and the result, a chip per turn to jump. The URL follows (#turn-N), so a link
// opens the same turn; ?turn=N works too. Without this script every turn shows.
"use strict";
(() => {
  const stepper = document.getElementById("stepper");
  const total = Number(stepper.dataset.steps);
  const sections = Array.from(document.querySelectorAll("section.turn"));
  const chips = Array.from(stepper.querySelectorAll(".chip"));
  const position = document.getElementById("position");
  const all = document.getElementById("all");
  let current = 1;

  function fromHash() {
    const match = /^#turn-(\d+)$/.exec(location.hash);
    return match ? Number(match[1]) : null;
  }

  function show(step, updateUrl = true) {
    current = Math.min(Math.max(1, step), total);
    sections.forEach((s) => s.classList.toggle("current", Number(s.dataset.step) === current));
    chips.forEach((c, i) => c.classList.toggle("current", i + 1 === current));
    position.textContent = current === total ? `result (after ${total - 1} turns)` : `turn ${current} of ${total - 1}`;
    if (updateUrl) history.replaceState(null, "", `${location.pathname}${location.search}#turn-${current}`);
    if (all.checked) document.getElementById(`turn-${current}`).scrollIntoView({ block: "start" });
  }

  document.body.classList.add("stepping");
  document.getElementById("first").addEventListener("click", () => show(1));
  document.getElementById("prev").addEventListener("click", () => show(current - 1));
  document.getElementById("next").addEventListener("click", () => show(current + 1));
  document.getElementById("last").addEventListener("click", () => show(total));
  all.addEventListener("change", () => document.body.classList.toggle("all", all.checked));
  chips.forEach((chip, i) => chip.addEventListener("click", (event) => { event.preventDefault(); show(i + 1); }));
  window.addEventListener("hashchange", () => { const step = fromHash(); if (step) show(step, false); });

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) && target.type !== "checkbox")) return;
    const moves = { ArrowLeft: current - 1, ArrowRight: current + 1, Home: 1, End: total };
    if (event.key in moves) {
      event.preventDefault();
      show(moves[event.key]);
    }
  });

  // One toggle opens or closes every prompt, so stepping keeps the reader's choice.
  const prompts = Array.from(document.querySelectorAll("details.prompt"));
  prompts.forEach((d) => d.addEventListener("toggle", () => prompts.forEach((o) => { if (o.open !== d.open) o.open = d.open; })));

  show(fromHash() || Number(stepper.dataset.selected) || 1, fromHash() !== null || location.search.includes("turn="));
})();
