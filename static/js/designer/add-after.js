// The "+" below an output. It lists the step types; the one chosen goes below the output,
// clear of other steps, and is connected from it. Below a connected output it goes in
// between: the steps after it move down a row to make room. Step, edges and moves are one
// change: one undo.

import { scheduleSave } from "./autosave.js";
import { graph, routing, selection } from "./canvas.js";
import { NODE_H, NODE_W, RANK_GAP, edgeSpec, nodeSpec } from "./cells.js";
import { refreshPortText } from "./drawing.js";
import { canSplice, freeSpotNear, newId, splice } from "./editing.js";
import { edgeLabel, stepName } from "./labels.js";
import { page } from "./page.js";
import { bringIntoView } from "./view.js";

function portWords(node, port) {
  const name = port.replace(/^out:/, "");
  return name === "out" ? "" : ` (${edgeLabel(node, name) || name})`;
}

const edgeFrom = (node, port) =>
  graph.getConnectedEdges(node, { outgoing: true }).find((edge) => edge.getSourcePortId() === port);

// The steps reachable from `start` (itself included) but not `source`.
function after(start, source) {
  const found = new Set();
  const todo = [start];
  while (todo.length) {
    const node = todo.pop();
    if (!node || node === source || found.has(node)) continue;
    found.add(node);
    for (const edge of graph.getConnectedEdges(node, { outgoing: true })) todo.push(edge.getTargetCell());
  }
  return [...found];
}

function addAfter(node, port, type) {
  const item = page.byType[type];
  const at = node.getPosition();
  const offset = node.getPortsPosition("out")[port];
  const x = at.x + (offset ? offset.position.x : NODE_W / 2) - NODE_W / 2;
  const row = at.y + NODE_H + RANK_GAP;
  const next = edgeFrom(node, port);
  const target = next && next.getTargetCell();
  const between = Boolean(target && target.isNode() && canSplice(type, item.ports));
  let added = null;
  graph.batchUpdate("add-after", () => {
    if (between) {
      const below = after(target, node);
      const room = NODE_H + RANK_GAP;
      if (below.some((step) => step.getPosition().y < row + room)) {
        for (const step of below) step.translate(0, room);
      }
    }
    const spot = freeSpotNear({ x, y: row });
    added = graph.addNode(nodeSpec({ id: newId(type), type, config: structuredClone(item.config) }, spot, item.ports, page));
    if (between) {
      splice(next, added);
    } else {
      if (next) next.remove();
      graph.addEdge(edgeSpec(node.id, port.replace(/^out:/, ""), added.id, null, node, routing));
    }
  });
  refreshPortText(node);
  selection.clean();
  selection.select(added);
  bringIntoView(added);
  scheduleSave();
  return added;
}

export function setUpAddAfter() {
  const { byType, canvasBox, editable } = page;
  const addDialog = document.getElementById("add-dialog");
  // The output the dialog is open for: {node: its step's id, port: its id}.
  let addFrom = null;
  const openAdd = (node, port) => {
    if (!editable || !addDialog) return;
    addFrom = { node: node.id, port };
    const data = node.getData();
    addDialog.querySelector("[data-add-from]").textContent =
      `${data.label || (byType[data.type] || {}).label || data.type}${portWords(node, port)}`;
    addDialog.querySelector("[data-add-summary]").textContent = data.label ? data.summary || "" : stepName(node, byType);
    const next = edgeFrom(node, port);
    const target = next && next.getTargetCell();
    addDialog.querySelector("[data-add-where]").textContent = target
      ? `The new step goes in between, before ${stepName(target, byType)}.`
      : "The new step goes below it, connected.";
    addDialog.showModal();
    addDialog.querySelector("[data-add-type]").focus();
  };

  // The "+" is the port's, inside a step: a press on it is neither a drag of the step nor
  // the start of an edge.
  const portAdd = (target) => (target && target.closest ? target.closest(".port-add") : null);
  const addFromPort = (target) => {
    const holder = target.closest(".x6-port");
    const port = holder && holder.querySelector("[port]");
    const view = graph.findView(target);
    if (!view || !view.cell.isNode() || !port) return;
    openAdd(view.cell, port.getAttribute("port"));
  };
  canvasBox.addEventListener("mousedown", (event) => { if (portAdd(event.target)) event.stopPropagation(); }, true);
  canvasBox.addEventListener("click", (event) => {
    const add = portAdd(event.target);
    if (add) { event.stopPropagation(); addFromPort(add); }
  }, true);
  canvasBox.addEventListener("keydown", (event) => {
    const add = portAdd(event.target);
    if (!add || (event.key !== "Enter" && event.key !== " ")) return;
    event.preventDefault();
    event.stopPropagation();
    addFromPort(add);
  });
  if (addDialog) {
    for (const button of addDialog.querySelectorAll("[data-add-type]")) {
      button.addEventListener("click", () => {
        const node = addFrom && graph.getCellById(addFrom.node);
        addDialog.close();
        if (node) addAfter(node, addFrom.port, button.dataset.addType);
      });
    }
    addDialog.querySelector("[data-add-cancel]").addEventListener("click", () => addDialog.close());
    addDialog.addEventListener("close", () => canvasBox.focus());
  }
}
