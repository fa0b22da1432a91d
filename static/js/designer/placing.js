// Where a new step goes, and which step the arrow keys go to. Pure, so Node's test runner can
// import it; the callers read the places off the graph.

import { NODE_H, NODE_W, RANK_GAP } from "./cells.js";

// The first place at or beside or below `wanted` (a step's top left corner) that no step
// takes, so steps never land on each other. `taken`: the top left corner of every step.
export function freeSpot(wanted, taken) {
  const free = (x, y) => taken.every((p) => Math.abs(p.x - x) >= NODE_W + 16 || Math.abs(p.y - y) >= NODE_H + 16);
  for (let row = 0; row < 30; row += 1) {
    for (const col of [0, 1, -1, 2, -2, 3]) {
      const x = wanted.x + col * (NODE_W + 36);
      const y = wanted.y + row * (NODE_H + RANK_GAP);
      if (free(x, y)) return { x: Math.round(x), y: Math.round(y) };
    }
  }
  return { x: Math.round(wanted.x), y: Math.round(wanted.y) };
}

export const DIRECTIONS = { up: [0, -1], down: [0, 1], left: [-1, 0], right: [1, 0] };

// The nearest of `others` (the centres of the other steps) that way ("up", "down", "left" or
// "right") from `here` (the centre of the selected step), a step straight that way counting
// as nearer than one off to the side: its index, or -1 when none is that way.
export function nearestThatWay(here, others, direction) {
  const [dx, dy] = DIRECTIONS[direction];
  let best = -1;
  let bestScore = Infinity;
  others.forEach((there, index) => {
    const along = (there.x - here.x) * dx + (there.y - here.y) * dy;
    const across = Math.abs((there.x - here.x) * dy) + Math.abs((there.y - here.y) * dx);
    if (along <= 1) return; // not that way
    const score = along + 2 * across;
    if (score < bestScore) { best = index; bestScore = score; }
  });
  return best;
}
