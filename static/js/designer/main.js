// The journey canvas: draws the draft with X6, edits it, and autosaves it with its revision.
// The server is the judge of a document: every save answers with its problems and the ports
// of each node, which the canvas then shows.
//
// This is the entry of the canvas's native ES modules, loaded with <script type="module">
// after the vendor builds of X6 and dagre, which stay globals on window; there is no bundler.
// Importing a module does nothing but define it: the parts are set up here, in this order,
// once the page has the designer and X6. The pure ones (labels, ports, cells, document,
// placing, routes, figures, simulation-input) touch neither the page nor X6 and are tested
// with `node --test tests/js/`.

import { setUpAddAfter } from "./add-after.js";
import { currentDocument, save } from "./autosave.js";
import { createCanvas, graph, selection } from "./canvas.js";
import { setUpConnect } from "./connect.js";
import { setUpCounts } from "./counts.js";
import { openDraft } from "./draft.js";
import { setUpDrawing } from "./drawing.js";
import { setUpDropping } from "./dropping.js";
import { setUpEditing } from "./editing.js";
import { setUpKeys } from "./keyboard.js";
import { readPage } from "./page.js";
import { setUpPanel } from "./panel.js";
import { setUpProblems } from "./problems.js";
import { fitToWindow, setUpFullScreen } from "./room.js";
import { setUpSimulation } from "./simulate.js";
import { setUpToolbar } from "./toolbar.js";

const root = document.getElementById("designer");
if (root && window.X6) {
  readPage(root);
  fitToWindow();
  createCanvas();
  setUpDrawing();
  setUpProblems();
  setUpDropping();
  setUpEditing();
  setUpKeys();
  setUpConnect();
  setUpAddAfter();
  setUpFullScreen();
  setUpToolbar();
  setUpPanel();
  setUpCounts();
  setUpSimulation();
  openDraft();
  // Benchmarks and browser tests reach the canvas through this.
  window.throughlineDesigner = { graph, selection, currentDocument, save };
}
