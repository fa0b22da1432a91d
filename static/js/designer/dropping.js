// Adding a step from the step list, by a click or by dragging it onto the canvas. A new step
// from the list, or a step not yet connected, dropped on the edge A -> B goes in between:
// A -> the step (its input), the step (its usual way on, else its first output) -> B. While
// dragging, the edge it would go into is highlighted.

import { graph, isNote } from "./canvas.js";
import { addNode, canSplice, splice } from "./editing.js";
import { page } from "./page.js";

const NODE_DRAG = "application/x-throughline-node";

// The edge within reach of `point` (in the journey's coordinates), the nearest one.
function edgeAt(point) {
  const reach = 14 / graph.transform.getScale().sx;
  let best = null;
  let bestDistance = reach;
  for (const edge of graph.getEdges()) {
    const view = graph.findViewByCell(edge);
    if (!view || !edge.getTargetCellId() || !view.path) continue;
    const closest = view.getClosestPoint(point);
    const distance = closest ? closest.distance(point) : Infinity;
    if (distance < bestDistance) { best = edge; bestDistance = distance; }
  }
  return best;
}

export function setUpDropping() {
  const { byType, canvasBox, editable } = page;
  // The edge highlighted as the one a drop goes into, if any.
  let dropEdge = null;
  const markDropEdge = (edge) => {
    if (edge === dropEdge) return;
    for (const old of [dropEdge, edge]) {
      const view = old && graph.findViewByCell(old);
      if (view) view.container.classList.toggle("drop-target", old === edge);
    }
    dropEdge = edge;
  };
  let dragType = null;
  for (const button of document.querySelectorAll("#palette [data-node-type]")) {
    button.addEventListener("click", () => addNode(button.dataset.nodeType));
    button.addEventListener("dragstart", (event) => {
      dragType = button.dataset.nodeType;
      event.dataTransfer.setData(NODE_DRAG, button.dataset.nodeType);
      event.dataTransfer.effectAllowed = "copy";
    });
    button.addEventListener("dragend", () => { dragType = null; markDropEdge(null); });
  }
  canvasBox.addEventListener("dragover", (event) => {
    if (!editable || !event.dataTransfer.types.includes(NODE_DRAG)) return;
    event.preventDefault();
    const item = dragType && byType[dragType];
    const point = graph.clientToLocal(event.clientX, event.clientY);
    markDropEdge(item && canSplice(dragType, item.ports) ? edgeAt(point) : null);
  });
  canvasBox.addEventListener("dragleave", (event) => {
    if (!canvasBox.contains(event.relatedTarget)) markDropEdge(null);
  });
  canvasBox.addEventListener("drop", (event) => {
    const type = event.dataTransfer.getData(NODE_DRAG);
    const onEdge = dropEdge;
    markDropEdge(null);
    if (!type || !editable) return;
    event.preventDefault();
    const point = graph.clientToLocal(event.clientX, event.clientY);
    addNode(type, point, onEdge && canSplice(type, byType[type].ports) ? onEdge : null);
  });

  // A step on the canvas with no edge yet can be dragged onto an edge the same way; the move
  // and the splice are one change for undo.
  let dragging = null;
  const loose = (node) => editable && !isNote(node) && node.hasPort("in") &&
    node.getPorts().some((p) => p.group === "out") && graph.getConnectedEdges(node).length === 0;
  graph.on("node:mousedown", ({ node, e }) => {
    if (!loose(node) || (e.target.closest && e.target.closest("[magnet]"))) return;
    dragging = node;
    graph.startBatch("drop-on-edge");
  });
  graph.on("node:moving", ({ node, x, y }) => {
    if (node === dragging) markDropEdge(edgeAt({ x, y }));
  });
  graph.on("node:moved", ({ node }) => {
    if (node !== dragging || !dropEdge) return;
    const edge = dropEdge;
    markDropEdge(null);
    splice(edge, node);
  });
  // The canvas hears the button go up after this; node:moved, if the step moved, comes then.
  window.addEventListener("mouseup", () => {
    if (!dragging) return;
    setTimeout(() => {
      dragging = null;
      markDropEdge(null);
      graph.stopBatch("drop-on-edge");
    });
  }, true);
}
