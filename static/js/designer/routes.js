// Arrange's rules for edges, on dagre's output: the order a step's branches keep, and where
// an edge bends. Pure, so Node's test runner can import it; arrange.js runs dagre.

import { NODE_H, RANK_GAP } from "./cells.js";

// An orthogonal route from an edge's port (`start`) through dagre's `bends` to the middle of
// the target's top (`end`). Runs across are made only in the gaps between rows of steps
// (`rowTops`: the y of each row); a run down passes a row through the slot dagre kept free
// for it. So no segment crosses a step. Returns the vertices, [] for a straight edge.
export function elbows(start, end, bends, rowTops) {
  const rowAt = (y) => rowTops.find((top) => y >= top - 1 && y <= top + NODE_H + 1);
  const vertices = [];
  let x = Math.round(start.x);
  const across = (y, to) => {
    const level = Math.round(y);
    if (vertices.length && vertices[vertices.length - 1].y === level) {
      // A second run in the same gap goes on from where the first began: one run, instead
      // of a line out to the bend and back that would seem to reach another step's port.
      x = vertices[vertices.length - 2].x;
      vertices.length -= 2;
    }
    if (Math.abs(to - x) < 1) return;
    vertices.push({ x, y: level }, { x: Math.round(to), y: level });
    x = Math.round(to);
  };
  for (const bend of bends) {
    const row = rowAt(bend.y);
    across(row === undefined ? bend.y : row - RANK_GAP / 2, bend.x);
  }
  across(end.y - RANK_GAP / 2, end.x);
  return vertices;
}

// Row by row, the paths leaving a step's ports (dagre's bend points down to the next step)
// keep the ports' left-to-right order. A constraint that would contradict earlier ones is
// left out. `layered`: the graph dagre hands to customOrder (nodes(), node(v) with rank and
// dummy, outEdges(v) with each edge's name, successors(v)); `order`: step id -> its output
// port ids, left to right. Returns dagre's constraints, [{left, right}].
export function portConstraints(layered, order) {
  const constraints = [];
  const right = new Map();
  const reaches = (from, to, seen = new Set()) => {
    if (from === to) return true;
    if (seen.has(from)) return false;
    seen.add(from);
    return [...(right.get(from) || [])].some((next) => reaches(next, to, seen));
  };
  for (const v of layered.nodes()) {
    const ports = order.get(v);
    if (!ports || ports.length < 2) continue;
    const paths = (layered.outEdges(v) || [])
      .filter((e) => ports.includes(e.name))
      .sort((a, b) => ports.indexOf(a.name) - ports.indexOf(b.name))
      .map((e) => {
        const path = [e.w];
        // A bend point has one way on; follow it to the step the edge ends at.
        while (layered.node(path[path.length - 1]).dummy && path.length < 1000) {
          const next = layered.successors(path[path.length - 1]) || [];
          if (next.length !== 1) break;
          path.push(next[0]);
        }
        return path;
      });
    for (let i = 1; i < paths.length; i += 1) {
      const [one, two] = [paths[i - 1], paths[i]];
      for (let row = 0; row < Math.min(one.length, two.length); row += 1) {
        const [left, next] = [one[row], two[row]];
        if (left === next) break; // the two paths meet: below, they are one
        if (layered.node(left).rank !== layered.node(next).rank || reaches(next, left)) continue;
        constraints.push({ left, right: next });
        if (!right.has(left)) right.set(left, new Set());
        right.get(left).add(next);
      }
    }
  }
  return constraints;
}
