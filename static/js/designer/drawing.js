// Drawing: the shapes of steps and edges, the words on ports and edges as the journey
// changes, and what the server's answer to a save changes on the steps (summaries, ports).

import { graph, isNote, quietly, setViewData, steps } from "./canvas.js";
import { card } from "./cards.js";
import { EDGE_LABEL, edgeLabel, edgeLabelSpec, portName } from "./labels.js";
import { page } from "./page.js";
import { NODE_H, NODE_W } from "./cells.js";
import { PORT_GROUPS, addAttrs, portItems, portText } from "./ports.js";

export function setUpDrawing() {
  // Steps and edges are shapes of their own: what they share is set once here, not copied
  // into each of a journey's hundreds of cells.
  X6.Graph.registerEdge("journey-edge", {
    inherit: "edge",
    defaultLabel: EDGE_LABEL,
    attrs: { line: { stroke: "#5a6b8c", strokeWidth: 2, targetMarker: { name: "block", width: 10, height: 8 } } },
    zIndex: 0,
  }, true);
  X6.Shape.HTML.register({
    shape: "journey-step",
    width: NODE_W,
    height: NODE_H,
    effect: ["data"],
    html: (cell) => card(cell),
    ports: { groups: PORT_GROUPS },
  });

  // Tests and assistive tools find nodes by these attributes.
  graph.on("node:added", ({ node }) => markNode(node));
  graph.on("view:mounted", ({ view }) => { if (view.cell.isNode()) markNode(view.cell); });
}

function markNode(node) {
  const view = graph.findViewByCell(node);
  if (!view) return;
  if (isNote(node)) { view.container.setAttribute("data-note-id", node.id); return; }
  view.container.setAttribute("data-node-id", node.id);
  view.container.setAttribute("data-node-type", node.getData().type);
}

// The name under each output and its "+" follow whether an edge leaves it (see portText).
export function refreshPortText(node) {
  if (!node || !node.isNode() || isNote(node)) return;
  const used = new Set(graph.getConnectedEdges(node, { outgoing: true }).map((edge) => edge.getSourcePortId()));
  quietly(() => {
    for (const port of node.getPorts()) {
      if (port.group !== "out") continue;
      const item = { name: port.id.replace(/^out:/, ""), required: port.required !== false };
      const text = portText(item, used.has(port.id), node);
      if (node.getPortProp(port.id, "attrs/text/text") !== text) node.setPortProp(port.id, "attrs/text/text", text);
      const add = addAttrs(item, used.has(port.id), node, page);
      const had = node.getPortProp(port.id, "attrs/add") || {};
      if (Object.keys(add).some((key) => had[key] !== add[key])) node.setPortProp(port.id, "attrs/add", { ...had, ...add });
    }
  });
}

// An edge's words follow its source step's type and config (see edgeLabel).
export function labelled(edge) {
  const port = portName(edge.getSourcePortId());
  const text = edgeLabel(edge.getSourceCell(), port);
  quietly(() => edge.setLabels(text ? [edgeLabelSpec(text)] : []));
}

// The server's words for each step, and the words on the edges leaving it, which may
// follow from its config (a split's shares, an awaited event).
export function showSummaries(summaries) {
  for (const node of steps()) {
    const summary = (summaries || {})[node.id];
    if (summary === undefined || node.getData().summary === summary) continue;
    setViewData(node, { summary });
    for (const edge of graph.getConnectedEdges(node, { outgoing: true })) labelled(edge);
    refreshPortText(node);
  }
}

export function updatePorts(ports) {
  // Keep the ports that stay (and their edges); add the new ones, drop the gone ones. A
  // step the answer does not know was added since its document was sent (a form saved on
  // the way to a new step): it keeps its ports until the canvas's own save answers.
  quietly(() => {
    for (const node of steps()) {
      if (!(node.id in ports)) continue;
      const used = new Set(graph.getConnectedEdges(node, { outgoing: true }).map((edge) => edge.getSourcePortId()));
      const wanted = portItems(node.getData(), ports[node.id] || [], used, page);
      const wantedIds = new Set(wanted.map((p) => p.id));
      const have = new Set(node.getPorts().map((p) => p.id));
      for (const id of have) if (!wantedIds.has(id)) node.removePort(id);
      const missing = wanted.filter((p) => !have.has(p.id));
      if (missing.length) node.addPorts(missing);
    }
  });
}
