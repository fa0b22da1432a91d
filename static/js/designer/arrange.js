// Arrange: dagre lays the journey out top to bottom, room left for the edges' words, and
// the branches of a step side by side in the order of its ports (yes before no, the event
// before the timeout), so they do not cross. Each edge keeps dagre's route, which passes
// between the steps, never under one (see routes.js).

import { scheduleSave } from "./autosave.js";
import { graph, quietly, routing, steps } from "./canvas.js";
import { NODE_H, NODE_W, RANK_GAP } from "./cells.js";
import { elbows, portConstraints } from "./routes.js";
import { fit } from "./view.js";

// True while Arrange moves the steps: their edges keep the routes it gives them.
export let arranging = false;

// `record`: false when a journey is arranged as it opens, which is neither an edit nor undone.
export function autoLayout(record = true) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 36, edgesep: 24, ranksep: RANK_GAP, marginx: 0, marginy: 0 });
  const order = new Map();
  for (const node of steps()) {
    g.setNode(node.id, { width: NODE_W, height: NODE_H });
    order.set(node.id, node.getPorts().filter((p) => p.group === "out").map((p) => p.id));
  }
  const edges = graph.getEdges().filter((edge) => g.hasNode(edge.getSourceCellId()) && g.hasNode(edge.getTargetCellId() || ""));
  const rank = (edge) => (order.get(edge.getSourceCellId()) || []).indexOf(edge.getSourcePortId());
  edges.sort((a, b) => rank(a) - rank(b));
  for (const edge of edges) g.setEdge(edge.getSourceCellId(), edge.getTargetCellId(), {}, edge.getSourcePortId());
  dagre.layout(g, {
    customOrder: (layered, orderLayers) => orderLayers(layered, { constraints: portConstraints(layered, order) }),
  });
  const move = () => {
    arranging = true;
    for (const node of steps()) {
      const p = g.node(node.id);
      node.position(Math.round(p.x - NODE_W / 2), Math.round(p.y - NODE_H / 2));
    }
    const rowTops = [...new Set(steps().map((node) => node.getPosition().y))];
    for (const edge of edges) {
      // An edge that loops back up (through a wait) finds its own way around the steps.
      if (edge.getTargetCell().getPosition().y <= edge.getSourceCell().getPosition().y) {
        edge.setVertices([]);
        edge.setRouter(routing);
        continue;
      }
      const found = g.edge(edge.getSourceCellId(), edge.getTargetCellId(), edge.getSourcePortId());
      const vertices = found && found.points ? elbowsOf(edge, found.points.slice(1, -1), rowTops) : [];
      edge.setVertices(vertices);
      edge.setRouter({ name: "normal" });
    }
    arranging = false;
  };
  if (record) {
    graph.batchUpdate("layout", move);
    scheduleSave();
  } else {
    quietly(move);
    return false; // opening the journey sets the view
  }
  fit();
  return false;
}

// The edge's route from its port to the middle of its target's top, through dagre's bends.
function elbowsOf(edge, bends, rowTops) {
  const source = edge.getSourceCell();
  const target = edge.getTargetCell();
  const port = source.getPortsPosition("out")[edge.getSourcePortId()];
  const at = source.getPosition();
  const start = { x: at.x + (port ? port.position.x : NODE_W / 2), y: at.y + NODE_H };
  const end = { x: target.getPosition().x + NODE_W / 2, y: target.getPosition().y };
  return elbows(start, end, bends, rowTops);
}
