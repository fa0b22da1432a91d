// Editing: adding a step, putting one into an edge, and what follows any change to the graph
// (the words on ports and edges, the routes of moved steps, autosave); delete, undo, redo,
// copy and paste.

import { arranging } from "./arrange.js";
import { scheduleSave } from "./autosave.js";
import { clipboard, graph, history, isNote, isQuiet, routing, selection, setViewData, steps } from "./canvas.js";
import { NODE_H, NODE_W, RANK_GAP, edgeSpec, nodeSpec } from "./cells.js";
import { labelled, refreshPortText } from "./drawing.js";
import { portName } from "./labels.js";
import { page } from "./page.js";
import { freeSpot } from "./placing.js";
import { usualFirst } from "./ports.js";
import { bringIntoView, freeCenter } from "./view.js";

export function newId(type) {
  let n = 1;
  while (graph.getCellById(`${type}_${n}`)) n += 1;
  return `${type}_${n}`;
}

// Where a new step goes: where it was dropped; else below the selected step (its next step
// is the likely one to add); else in the middle of the view. Then to the first place beside
// or below that no step takes (see freeSpot).
function placeFor(point) {
  if (point) return { x: point.x - NODE_W / 2, y: point.y - NODE_H / 2 };
  const chosen = selection.getSelectedCells().filter((cell) => cell.isNode() && !isNote(cell));
  if (chosen.length === 1) {
    const p = chosen[0].getPosition();
    return { x: p.x, y: p.y + NODE_H + RANK_GAP };
  }
  const middle = freeCenter();
  return { x: middle.x - NODE_W / 2, y: middle.y - NODE_H / 2 };
}

export const freeSpotNear = (wanted) => freeSpot(wanted, steps().map((node) => node.getPosition()));

// `onEdge`: an edge the new step goes into (see splice); adding and splicing are one change.
export function addNode(type, point, onEdge) {
  const item = page.byType[type];
  const at = freeSpotNear(placeFor(point));
  let node = null;
  graph.batchUpdate("add-step", () => {
    node = graph.addNode(
      nodeSpec({ id: newId(type), type, config: structuredClone(item.config) }, at, item.ports, page),
    );
    if (onEdge) splice(onEdge, node);
  });
  selection.clean();
  selection.select(node);
  bringIntoView(node);
  return node;
}

// Whether a step of this type (with these outputs) can go into an edge: it needs an input
// and an output.
export const canSplice = (type, ports) => type !== "trigger" && ports.length > 0;

// Replaces `edge` (A -> B) by A -> node -> B.
export function splice(edge, node) {
  const from = edge.getSourceCell();
  const port = portName(edge.getSourcePortId());
  const to = edge.getTargetCellId();
  const [out] = usualFirst(node.getPorts());
  edge.remove();
  graph.addEdge(edgeSpec(from.id, port, node.id, null, from, routing));
  if (out) graph.addEdge(edgeSpec(node.id, out.id.replace(/^out:/, ""), to, null, node, routing));
  refreshPortText(from);
  refreshPortText(node);
}

export function setUpEditing() {
  // One edge per output port: a new connection from a port replaces the old one.
  graph.on("edge:connected", ({ edge, isNew }) => {
    const port = edge.getSourcePortId();
    for (const other of graph.getConnectedEdges(edge.getSourceCell(), { outgoing: true })) {
      if (other !== edge && other.getSourcePortId() === port) other.remove();
    }
    labelled(edge);
    refreshPortText(edge.getSourceCell());
    if (isNew) scheduleSave();
  });
  graph.on("cell:added", ({ cell }) => {
    if (cell.isEdge()) {
      // An edge put back by undo or redo: its words and its port's name follow.
      if (!isQuiet() && cell.getTargetCellId()) {
        labelled(cell);
        refreshPortText(graph.getCellById(cell.getSourceCellId()));
      }
      return;
    }
    // A pasted step comes without the figures, problems or light of the one copied, and
    // names its outputs, none of which is connected yet.
    if (!isQuiet() && !isNote(cell)) {
      setViewData(cell, { figures: null, problems: [], lit: false });
      refreshPortText(cell);
    }
    scheduleSave();
  });
  graph.on("cell:removed", ({ cell }) => {
    if (cell.isEdge()) refreshPortText(graph.getCellById(cell.getSourceCellId()));
    scheduleSave();
  });
  // Moving a step by itself or with the selection it belongs to (the latter fires no node:moved).
  // Its edges leave the routes Arrange gave them and find their own way around the steps.
  graph.on("node:change:position", ({ node }) => {
    if (!isQuiet() && !arranging && !replaying && !isNote(node)) {
      for (const edge of graph.getConnectedEdges(node)) {
        if ((edge.getRouter() || {}).name === "normal") {
          edge.setVertices([]);
          edge.setRouter(routing);
        }
      }
    }
    scheduleSave();
  });
  graph.on("edge:change:target", ({ edge }) => { if (edge.getTargetCellId()) scheduleSave(); });
  graph.on("history:change", updateHistoryButtons);
}

// The commands below answer false: bound to keys, that stops the browser's own action.

export function removeSelection() {
  if (!page.editable) return false;
  const cells = selection.getSelectedCells();
  if (cells.length) graph.removeCells(cells);
  return false;
}

// While undo or redo puts cells back, the steps' moves are theirs, not the marketer's: the
// routes they bring back must stay.
let replaying = false;
function replay(step) {
  replaying = true;
  try { step(); } finally { replaying = false; }
  for (const edge of graph.getEdges()) labelled(edge);
  for (const node of steps()) refreshPortText(node);
}
export function undo() { if (history.canUndo()) replay(() => history.undo()); return false; }
export function redo() { if (history.canRedo()) replay(() => history.redo()); return false; }
export function copy() { const cells = selection.getSelectedCells(); if (cells.length) clipboard.copy(cells); return false; }
export function paste() {
  if (!page.editable || clipboard.isEmpty()) return false;
  const pasted = clipboard.paste({ offset: 32 });
  selection.clean();
  selection.select(pasted);
  return false;
}
export function selectAll() { selection.select(graph.getNodes()); return false; }

export function updateHistoryButtons() {
  document.querySelector('[data-action="undo"]').disabled = !history.canUndo();
  document.querySelector('[data-action="redo"]').disabled = !history.canRedo();
}
