// The X6 graph and its plugins, made once by createCanvas() and shared by every part of the
// canvas, with the few things they all ask of it.

import { edgeStyle, routerFor } from "./cells.js";
import { page } from "./page.js";

export let graph = null;
export let selection = null;
export let keyboard = null;
export let clipboard = null;
export let history = null;

// Changes the canvas makes by itself (drawing a loaded draft, the words on ports and edges,
// figures, problems, the simulation's light) are neither edits to save nor steps to undo.
let quiet = false;
export const isQuiet = () => quiet;
export function quietly(change) {
  const was = quiet;
  quiet = true;
  const result = change();
  quiet = was;
  return result;
}

// The router of the edges that have no route from Arrange, chosen by the journey's size
// when it is drawn (see routerFor).
export let routing = routerFor(0);
export function setRouting(router) {
  routing = router;
}

export function createCanvas() {
  const editable = page.editable;
  graph = new X6.Graph({
    container: page.canvasBox,
    autoResize: true,
    async: false, // draw a loaded journey in one go rather than frame by frame
    // Only the steps and edges in view (and a margin around it) get an SVG view; the others
    // are drawn when panning or zooming brings them in.
    virtual: { enabled: true, margin: 160 },
    grid: { visible: true, size: 10 },
    background: { color: "#fbfbfd" },
    // Dragging the background moves the view (Shift + drag selects several steps); the wheel,
    // or a pinch, zooms around the pointer.
    panning: { enabled: true, eventTypes: ["leftMouseDown", "rightMouseDown"] },
    mousewheel: { enabled: true, zoomAtMousePosition: true, factor: 1.1, minScale: 0.2, maxScale: 2 },
    interacting: () => ({ nodeMovable: editable, edgeMovable: editable, magnetConnectable: editable }),
    connecting: {
      snap: { radius: 24 },
      allowBlank: false,
      allowLoop: false,
      allowNode: false,
      allowEdge: false,
      allowMulti: true,
      highlight: true,
      connector: { name: "rounded", args: { radius: 8 } },
      validateMagnet: ({ magnet }) => editable && magnet.getAttribute("port-group") === "out",
      validateConnection: ({ targetMagnet, sourceCell, targetCell }) =>
        Boolean(targetMagnet) &&
        targetMagnet.getAttribute("port-group") === "in" &&
        sourceCell !== targetCell,
      createEdge: () => graph.createEdge(edgeStyle(false, routing)),
    },
  });

  // The bundled build does not add the plugins' shortcut methods to Graph: call the plugins.
  selection = new X6.Selection({ enabled: true, multiple: true, rubberband: true, modifiers: "shift", showNodeSelectionBox: true });
  // The canvas's keys with Ctrl (undo, redo, copy, paste) work wherever the focus is on the
  // page, except while typing in a field or a dialog: Ctrl+Z right after adding a step from
  // the step list undoes it. Keys without Ctrl (C, F, +, -, the arrows, Enter, Delete) only
  // while the canvas itself has the focus, so they never fire while someone uses a button or
  // reads or types elsewhere.
  const typing = (target) => Boolean(target && target.closest &&
    target.closest("input, textarea, select, [contenteditable], dialog, #node-panel, #simulate"));
  const onCanvas = (target) => !target || target === document.body || Boolean(target.closest && target.closest("#canvas"));
  keyboard = new X6.Keyboard({
    enabled: true,
    global: true,
    guard: (event) => !typing(event.target) && (event.ctrlKey || event.metaKey || onCanvas(event.target)),
  });
  clipboard = new X6.Clipboard({ enabled: true });
  history = new X6.History({ enabled: true, stackSize: 100, beforeAddCommand: () => !quiet });
  graph.use(selection);
  graph.use(new X6.Snapline({ enabled: true }));
  graph.use(keyboard);
  graph.use(clipboard);
  graph.use(history);
}

export const isNote = (cell) => cell.isNode() && Boolean(cell.getData() && cell.getData().note);
export const steps = () => graph.getNodes().filter((node) => !isNote(node));

// Figures, problems and light are view state, kept in the node's data outside the document:
// changing them is neither an edit nor undoable.
export function setViewData(node, values) {
  quietly(() => node.setData(values, { deep: false }));
}

// The minimap shows each step as a plain box and leaves edges out: drawing the full views a
// second time cost as much as the canvas itself. It is built once the canvas is on screen.
let minimap = null;
export function addMinimap() {
  if (minimap) return;
  class MapNodeView extends X6.NodeView {
    renderMarkup() { return this.renderJSONMarkup({ tagName: "rect", selector: "body" }); }
    renderPorts() {}
    update() {
      const size = this.cell.getSize();
      const body = this.container.firstChild;
      if (!body) return;
      body.setAttribute("width", size.width);
      body.setAttribute("height", size.height);
      body.setAttribute("rx", 8);
      body.setAttribute("fill", "#9aa7bf");
    }
  }
  minimap = new X6.MiniMap({
    container: page.mapBox,
    width: 200,
    height: 140,
    padding: 10,
    graphOptions: {
      async: true,
      createCellView: (cell) => (cell.isNode() ? MapNodeView : null),
    },
  });
  graph.use(minimap);
  // The minimap refits itself when the journey changes; its frame must follow, or it shows
  // the visible area at the minimap's previous scale.
  const map = minimap.targetGraph;
  if (map) for (const name of ["scale", "translate", "resize"]) map.on(name, () => minimap.updateViewport());
}
