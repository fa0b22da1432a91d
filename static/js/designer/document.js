// The journey document and the canvas, both ways: the document the canvas saves, built from
// plain data read off the graph, and the cells a loaded draft is drawn with. Pure, so Node's
// test runner can import it; autosave.js and draft.js do the reading and the drawing.
//
// The document is {nodes, edges, layout, ...}: each edge {from, to, port} leaves the output
// `port` ("out" when absent), and the layout holds each step's place, the sticky notes
// ("notes") and the routes Arrange found ("routes").

import { NODE_H, NODE_W, edgeSpec, nodeSpec, noteSpec, routerFor } from "./cells.js";
import { portName } from "./labels.js";
import { inOrder } from "./ports.js";

// The document to save. `base`: the draft as the server last answered it (its other keys are
// kept). `cellIds`: the ids of every cell on the canvas (a layout key that is not one, such
// as the notes, is kept from `base` unless replaced). `steps`: {id, x, y, type, label,
// config}. `notes`: {id, x, y, text}. `edges`: {from, sourcePort, to, route}, where
// `sourcePort` is X6's port id ("out:yes") and `route` the bends of an edge that follows its
// route from Arrange ([{x, y}], maybe none), or null for one the router finds its way for.
export function journeyDocument(base, { cellIds, steps, notes, edges }) {
  const layout = {};
  for (const key of Object.keys(base.layout || {})) {
    if (!cellIds.has(key)) layout[key] = base.layout[key]; // notes and the like
  }
  for (const step of steps) layout[step.id] = { x: Math.round(step.x), y: Math.round(step.y) };
  const kept = notes.map((note) => ({ id: note.id, x: Math.round(note.x), y: Math.round(note.y), text: note.text }));
  if (kept.length) layout.notes = kept;
  else delete layout.notes;
  const links = [];
  const routes = {};
  for (const edge of edges) {
    const port = portName(edge.sourcePort);
    if (!edge.to) continue;
    const item = { from: edge.from, to: edge.to };
    if (port !== "out") item.port = port;
    links.push(item);
    if (edge.route) routes[`${item.from}:${port}`] = edge.route.map((p) => [Math.round(p.x), Math.round(p.y)]);
  }
  if (Object.keys(routes).length) layout.routes = routes;
  else delete layout.routes;
  return {
    ...base,
    nodes: steps.map((step) => ({ id: step.id, type: step.type, ...(step.label ? { label: step.label } : {}), config: step.config })),
    edges: links,
    layout,
  };
}

// The routes Arrange found, kept in the draft's layout so a reopened journey draws its
// edges the same way: {"from:port": [[x, y], ...]}. Moving a step drops its edges' routes.
export function routeOf(layout, from, port) {
  const points = layout.routes && layout.routes[`${from}:${port}`];
  return Array.isArray(points)
    ? points.filter((p) => Array.isArray(p) && p.length === 2).map(([x, y]) => ({ x, y }))
    : null;
}

// Whether a route Arrange kept leaves from where its output was before a step's usual way
// on moved to the middle of its outputs (see ports.inOrder) rather than where it is now: the
// router then finds the way instead of a slanted line to the old bend.
function stale(route, at, ports, port) {
  if (!route.length || !at) return false;
  const listed = ports.map((p) => p.name);
  const drawn = inOrder(ports).map((p) => p.name);
  if (listed.join() === drawn.join() || !listed.includes(port)) return false;
  const xOf = (names) => at.x + (NODE_W * (2 * names.indexOf(port) + 1)) / (2 * names.length);
  return Math.abs(route[0].x - xOf(listed)) < 1.5 && Math.abs(route[0].x - xOf(drawn)) >= 1.5;
}

// Whether two steps of the layout would overlap when drawn at today's step size.
export function overlapping(nodes, layout) {
  // Sorted by x, a step can only overlap those that start less than a step's width after it.
  const boxes = nodes.map((node) => layout[node.id]).filter(Boolean).sort((a, b) => a.x - b.x);
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length && boxes[j].x < boxes[i].x + NODE_W; j += 1) {
      if (Math.abs(boxes[j].y - boxes[i].y) < NODE_H) return true;
    }
  }
  return false;
}

// Each step's outputs that an edge leaves: step id -> Set of port ids ("out:yes").
export function connectedPorts(edges) {
  const connected = new Map();
  for (const edge of edges) {
    if (!connected.has(edge.from)) connected.set(edge.from, new Set());
    connected.get(edge.from).add(`out:${edge.port || "out"}`);
  }
  return connected;
}

// How to draw the server's answer for a draft ({document, ports, summaries}): the router of
// edges without a route, whether to arrange the journey on open, and the specs of its steps,
// notes and edges, in the order they are drawn. `page`: {editable, byType} (see ports.js).
export function planDrawing(answer, page) {
  const doc = answer.document;
  const layout = doc.layout || {};
  const nodes = doc.nodes || [];
  const summaries = answer.summaries || {};
  const routing = routerFor(nodes.length);
  // A document without a layout (or without the place of some step), or one drawn for other
  // step sizes, is arranged on open; its edges then take the routes Arrange gives them.
  const arrange = nodes.some((node) => !layout[node.id]) || overlapping(nodes, layout);
  const connected = connectedPorts(doc.edges || []);
  const steps = nodes.map((node, index) => nodeSpec(
    node,
    layout[node.id] || { x: 80 + (index % 4) * 300, y: 60 + Math.floor(index / 4) * 180 },
    answer.ports[node.id] || [],
    page,
    summaries[node.id],
    connected.get(node.id),
  ));
  const byId = new Map(steps.map((spec) => [spec.id, spec]));
  const notes = [];
  for (const note of Array.isArray(layout.notes) ? layout.notes : []) {
    if (note && typeof note.id === "string" && !byId.has(note.id)) notes.push(noteSpec(note));
  }
  const edges = [];
  for (const edge of doc.edges || []) {
    if (!byId.has(edge.from) || !byId.has(edge.to)) continue;
    const port = edge.port || "out";
    let route = arrange ? [] : routeOf(layout, edge.from, port);
    if (route && stale(route, layout[edge.from], answer.ports[edge.from] || [], port)) route = null;
    edges.push(edgeSpec(edge.from, port, edge.to, route, byId.get(edge.from).data, routing));
  }
  return { routing, arrange, steps, notes, edges };
}
