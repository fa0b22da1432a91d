// Live counts. On a published journey, htmx polls the figures (the `liveCounts` event); each
// step shows how many entered it, wait there and went on. Counting is not an edit: it stays
// out of undo and autosave.

import { graph, setViewData, steps } from "./canvas.js";
import { journeyFigures, stepFigures } from "./figures.js";

// The last figures per step, kept for steps drawn after they came.
let counts = null;

export function setUpCounts() {
  document.body.addEventListener("liveCounts", (event) => {
    const figures = event.detail;
    counts = figures.nodes || {};
    showFigures();
    const line = document.getElementById("live-figures");
    if (line) line.textContent = journeyFigures(figures);
  });
}

export function showFigures() {
  if (!counts) return;
  for (const node of steps()) {
    const before = graph.getIncomingEdges(node) || [];
    const figures = stepFigures(counts, node.id, before.map((edge) => edge.getSourceCellId()));
    const had = node.getData().figures;
    if (JSON.stringify(had) !== JSON.stringify(figures)) setViewData(node, { figures });
    const view = graph.findViewByCell(node);
    if (view) {
      view.container.setAttribute("data-entered", figures.entered);
      view.container.setAttribute("data-waiting", figures.waiting);
      view.container.setAttribute("data-completed", figures.completed);
    }
  }
}
