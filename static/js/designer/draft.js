// Opening the draft: the page asks for it while the scripts load (window.throughlineDraft);
// once it is in, it is drawn, arranged if it has no usable layout, and viewed.

import { autoLayout } from "./arrange.js";
import { rememberDraft, revision } from "./autosave.js";
import { addMinimap, graph, history, isNote, quietly, setRouting } from "./canvas.js";
import { showFigures } from "./counts.js";
import { planDrawing } from "./document.js";
import { updateHistoryButtons } from "./editing.js";
import { page, setStatus } from "./page.js";
import { showProblems } from "./problems.js";
import { contentBox, fit, focusNode, openView, openedAt } from "./view.js";

function draw(answer) {
  const plan = planDrawing(answer, page);
  let fitAfter = false;
  quietly(() => {
    setRouting(plan.routing);
    // One batch: the views are drawn once, not after every cell.
    const cells = [...plan.steps, ...plan.notes].map((spec) => graph.createNode(spec));
    for (const spec of plan.edges) cells.push(graph.createEdge(spec));
    // Set the view first, so that only the steps in it get drawn (a journey to arrange is
    // viewed once arranged).
    fitAfter = !plan.arrange && !openView(contentBox(cells.filter((cell) => cell.isNode() && !isNote(cell))), cells);
    graph.resetCells(cells);
  });
  // The arrangement is saved with the marketer's first edit.
  if (plan.arrange) {
    autoLayout(false);
    openView();
  } else if (fitAfter) {
    fit();
  }
  showProblems(answer.problems);
}

export function openDraft() {
  const { canvasBox, draftUrl, mapBox, root } = page;
  canvasBox.tabIndex = 0;
  const draftRequest = window.throughlineDraft || fetch(draftUrl, { headers: { Accept: "application/json" } });
  draftRequest
    .then((response) => response.json())
    .then((answer) => {
      performance.mark("throughline:draft-loaded");
      rememberDraft(answer.revision, answer.document);
      draw(answer);
      // Figures that arrived before the steps were drawn are shown now.
      showFigures();
      performance.mark("throughline:drawn");
      history.clean();
      updateHistoryButtons();
      requestAnimationFrame(() => {
        const box = canvasBox.getBoundingClientRect();
        if (openedAt !== `${box.width}x${box.height}`) openView(); // the page changed size meanwhile
        performance.mark("throughline:opened");
        const later = window.requestIdleCallback || ((fn) => setTimeout(fn, 50));
        later(() => { if (!mapBox.hidden) addMinimap(); }, { timeout: 1000 });
      });
      setStatus(`Revision ${revision}`);
      // A link to one step (from the publish review) opens the canvas on its form.
      const asked = new URLSearchParams(window.location.search).get("step");
      if (asked) focusNode(asked);
      root.dataset.ready = "true";
    })
    .catch(() => setStatus("The draft could not be loaded; reload the page.", true));
}
