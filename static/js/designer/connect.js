// Connecting with the keyboard: with one step selected, C lists its free outputs and the
// steps it can lead to; the edge made is the one a drag from the port would make.

import { scheduleSave } from "./autosave.js";
import { graph, isNote, routing, selection, steps } from "./canvas.js";
import { edgeSpec } from "./cells.js";
import { refreshPortText } from "./drawing.js";
import { edgeLabel, stepName } from "./labels.js";
import { page, setStatus } from "./page.js";
import { usualFirst } from "./ports.js";

const dialog = () => document.getElementById("connect-dialog");

function freePorts(node) {
  const used = new Set(graph.getConnectedEdges(node, { outgoing: true }).map((edge) => edge.getSourcePortId()));
  return usualFirst(node.getPorts()).filter((port) => !used.has(port.id));
}

export function openConnect() {
  const connectDialog = dialog();
  if (!page.editable || !connectDialog) return;
  const nodes = selection.getSelectedCells().filter((cell) => cell.isNode());
  if (nodes.length !== 1 || isNote(nodes[0])) { setStatus("Select one step to connect it.", true); return; }
  const node = nodes[0];
  const ports = freePorts(node);
  const portSelect = document.getElementById("connect-port");
  const targetSelect = document.getElementById("connect-target");
  portSelect.replaceChildren(...ports.map((port) => {
    const name = port.id.replace(/^out:/, "");
    const words = edgeLabel(node, name);
    return new Option(words && words !== name ? `${name} (${words})` : name, port.id);
  }));
  const targets = steps().filter((other) => other !== node && other.hasPort("in"));
  targetSelect.replaceChildren(...targets.map((other) => new Option(stepName(other, page.byType), other.id)));
  connectDialog.querySelector("[data-connect-from]").textContent = stepName(node, page.byType);
  const none = ports.length === 0 || targets.length === 0;
  connectDialog.querySelector("[data-connect-none]").hidden = ports.length !== 0;
  connectDialog.querySelector("[data-connect-ok]").disabled = none;
  connectDialog.dataset.node = node.id;
  connectDialog.showModal();
  (none ? connectDialog.querySelector("[data-connect-cancel]") : portSelect).focus();
}

function connectChosen() {
  const node = graph.getCellById(dialog().dataset.node);
  const port = document.getElementById("connect-port").value;
  const to = document.getElementById("connect-target").value;
  if (!node || !port || !to) return;
  for (const other of graph.getConnectedEdges(node, { outgoing: true })) {
    if (other.getSourcePortId() === port) other.remove();
  }
  const edge = graph.addEdge(edgeSpec(node.id, port.replace(/^out:/, ""), to, null, node, routing));
  refreshPortText(edge.getSourceCell());
  scheduleSave();
}

export function setUpConnect() {
  const connectDialog = dialog();
  if (!connectDialog) return;
  connectDialog.querySelector("form").addEventListener("submit", (event) => {
    if (event.submitter && event.submitter.value !== "connect") return;
    connectChosen();
  });
  connectDialog.addEventListener("keydown", (event) => {
    // Enter on a list chooses, as on the Connect button.
    if (event.key === "Enter" && event.target.tagName === "SELECT") {
      event.preventDefault();
      if (!connectDialog.querySelector("[data-connect-ok]").disabled) { connectChosen(); connectDialog.close(); }
    }
  });
  connectDialog.querySelector("[data-connect-cancel]").addEventListener("click", () => connectDialog.close());
  connectDialog.addEventListener("close", () => page.canvasBox.focus());
}
