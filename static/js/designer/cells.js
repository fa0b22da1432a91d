// The cells of the canvas as plain data, for X6's createNode, addNode and addEdge: a step,
// a sticky note, an edge. Pure, so Node's test runner can import it.

import { edgeLabel, edgeLabelSpec } from "./labels.js";
import { portItems } from "./ports.js";

export const NODE_W = 264;
export const NODE_H = 92;
export const RANK_GAP = 64; // between rows of steps: room for an edge's words below its port

// Manhattan routing steers around steps but costs too much on very large journeys.
export function routerFor(stepCount) {
  return stepCount > 80
    ? { name: "orth", args: { padding: 16 } }
    : { name: "manhattan", args: { padding: 16 } };
}

// An edge with a route from Arrange goes straight through its points (they keep clear of
// every step); without one, `routing` (see routerFor) finds a way around the steps.
export function edgeStyle(routed, routing) {
  return { shape: "journey-edge", router: routed ? { name: "normal" } : routing };
}

// A step of the document ({id, type, config, label}) at `position`, with the server's
// `ports` for it and its `summary`; `connected`: its outputs that edges leave (see portItems).
export function nodeSpec(node, position, ports, page, summary, connected) {
  const item = page.byType[node.type];
  return {
    id: node.id,
    shape: "journey-step",
    x: position.x,
    y: position.y,
    width: NODE_W,
    height: NODE_H,
    ports: { items: portItems({ ...node, summary }, ports, connected, page) },
    data: {
      type: node.type,
      config: node.config || {},
      label: node.label || "",
      summary: summary || (item ? item.summary : ""),
    },
  };
}

// Sticky notes are X6 nodes too, but not steps: they live in the draft's layout ("notes")
// and never reach the engine.
export function noteSpec(note) {
  return {
    id: note.id,
    shape: "rect",
    x: note.x,
    y: note.y,
    width: 180,
    height: 90,
    attrs: {
      body: { rx: 4, ry: 4, fill: "#fff5b1", stroke: "#d4b106", strokeWidth: 1 },
      label: { text: note.text || "", fontSize: 12, fill: "#3d3200", textWrap: { width: -16, height: -12, ellipsis: true } },
    },
    data: { note: true, text: note.text || "" },
  };
}

// The edge from `port` of step `from` to step `to`. `route`: the edge's bends from Arrange
// ([] for a straight one), or null when it has none. `source`: the step it leaves (an X6 node
// or its data), whose type and config say the edge's words.
export function edgeSpec(from, port, to, route, source, routing) {
  const text = edgeLabel(source, port);
  return {
    ...edgeStyle(Boolean(route), routing),
    source: { cell: from, port: `out:${port}` },
    target: { cell: to, port: "in" },
    vertices: route || [],
    labels: text ? [edgeLabelSpec(text)] : [],
  };
}
