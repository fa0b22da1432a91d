// Where Arrange's edges run and in what order a step's branches go, where a new step goes,
// and which step the arrow keys go to.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { freeSpot, nearestThatWay } from "../../static/js/designer/placing.js";
import { elbows, portConstraints } from "../../static/js/designer/routes.js";

// The few calls of dagre's layered graph that portConstraints makes, on a hand-made graph:
// `nodes`: id -> {rank, dummy}; `edges`: [from, to, port].
function layered(nodes, edges) {
  return {
    nodes: () => Object.keys(nodes),
    node: (v) => nodes[v],
    outEdges: (v) => edges.filter(([from]) => from === v).map(([from, to, name]) => ({ v: from, w: to, name })),
    successors: (v) => edges.filter(([from]) => from === v).map(([, to]) => to),
  };
}

describe("portConstraints", () => {
  const ranks = { vip: { rank: 0 }, call: { rank: 2 }, mail: { rank: 2 }, end: { rank: 4 } };
  const branches = [["vip", "call", "out:true"], ["vip", "mail", "out:false"]];

  test("a step's branches keep the order of its ports", () => {
    const order = new Map([["vip", ["out:true", "out:false"]]]);
    assert.deepEqual(portConstraints(layered(ranks, branches), order), [{ left: "call", right: "mail" }]);
    const swapped = new Map([["vip", ["out:false", "out:true"]]]);
    assert.deepEqual(portConstraints(layered(ranks, branches), swapped), [{ left: "mail", right: "call" }]);
  });

  test("a branch through bend points is followed row by row to its step", () => {
    const nodes = { ...ranks, bend: { rank: 2, dummy: true }, late: { rank: 4 }, next: { rank: 4 } };
    const edges = [["vip", "bend", "out:true"], ["bend", "late", null], ["vip", "mail", "out:false"], ["mail", "next", "out:out"]];
    const order = new Map([["vip", ["out:true", "out:false"]], ["mail", ["out:out"]]]);
    // The bend point is kept left of mail; below it, the path stops at the step "late".
    assert.deepEqual(portConstraints(layered(nodes, edges), order), [{ left: "bend", right: "mail" }]);
  });

  test("a constraint that contradicts an earlier one is left out", () => {
    const nodes = { a: { rank: 0 }, b: { rank: 0 }, p: { rank: 2 }, q: { rank: 2 } };
    const edges = [["a", "p", "out:x"], ["a", "q", "out:y"], ["b", "q", "out:x"], ["b", "p", "out:y"]];
    const order = new Map([["a", ["out:x", "out:y"]], ["b", ["out:x", "out:y"]]]);
    assert.deepEqual(portConstraints(layered(nodes, edges), order), [{ left: "p", right: "q" }]);
  });

  test("no constraint for one port, paths that meet, or steps on different rows", () => {
    assert.deepEqual(portConstraints(layered(ranks, branches), new Map([["vip", ["out:true"]]])), []);
    const meet = [["vip", "end", "out:true"], ["vip", "end", "out:false"]];
    assert.deepEqual(portConstraints(layered(ranks, meet), new Map([["vip", ["out:true", "out:false"]]])), []);
    const apart = [["vip", "call", "out:true"], ["vip", "end", "out:false"]];
    assert.deepEqual(portConstraints(layered(ranks, apart), new Map([["vip", ["out:true", "out:false"]]])), []);
  });
});

describe("elbows", () => {
  // Rows of steps start at these y; a step is 92 high and rows are 64 apart.
  const rowTops = [60, 216, 372];

  test("an edge straight down needs no bends", () => {
    assert.deepEqual(elbows({ x: 132, y: 152 }, { x: 132, y: 216 }, [], rowTops), []);
  });

  test("an edge to a step beside goes across in the gap above the target", () => {
    assert.deepEqual(elbows({ x: 100.4, y: 152 }, { x: 400, y: 216 }, [], rowTops), [
      { x: 100, y: 184 }, { x: 400, y: 184 },
    ]);
  });

  test("a bend inside a row moves across in the gap above that row, never over a step", () => {
    const vertices = elbows({ x: 100, y: 152 }, { x: 700, y: 372 }, [{ x: 400, y: 250 }], rowTops);
    assert.deepEqual(vertices, [{ x: 100, y: 184 }, { x: 400, y: 184 }, { x: 400, y: 340 }, { x: 700, y: 340 }]);
    for (const { y } of vertices) {
      for (const top of rowTops) assert.ok(y < top || y > top + 92, `y ${y} crosses the row at ${top}`);
    }
  });

  test("a bend in the target's row is not a run out and back in the gap above it", () => {
    // dagre's last bend lies in the target's row, to the right: the route goes straight on.
    assert.deepEqual(elbows({ x: 100, y: 152 }, { x: 100, y: 372 }, [{ x: 400, y: 380 }], rowTops), []);
    assert.deepEqual(elbows({ x: 100, y: 152 }, { x: 250, y: 372 }, [{ x: 400, y: 380 }], rowTops), [
      { x: 100, y: 340 }, { x: 250, y: 340 },
    ]);
  });
});

describe("placing", () => {
  test("a new step goes where asked when the place is free, rounded", () => {
    assert.deepEqual(freeSpot({ x: 10.6, y: 20.2 }, []), { x: 11, y: 20 });
  });

  test("else beside, then on the other side, then below", () => {
    assert.deepEqual(freeSpot({ x: 0, y: 0 }, [{ x: 0, y: 0 }]), { x: 300, y: 0 });
    const row = [0, 300, -300, 600, -600, 900].map((x) => ({ x, y: 0 }));
    assert.deepEqual(freeSpot({ x: 0, y: 0 }, row), { x: 0, y: 156 });
  });

  test("the arrow keys go to the nearest step that way, straight ahead counting more", () => {
    const here = { x: 0, y: 0 };
    const others = [{ x: 0, y: 200 }, { x: 60, y: 100 }, { x: 0, y: -100 }, { x: 300, y: 0 }];
    assert.equal(nearestThatWay(here, others, "down"), 0);
    assert.equal(nearestThatWay(here, [...others, { x: 20, y: 100 }], "down"), 4);
    assert.equal(nearestThatWay(here, others, "up"), 2);
    // Off to the side counts double, but a step far straight ahead can still be the farther.
    assert.equal(nearestThatWay(here, others, "right"), 1);
    assert.equal(nearestThatWay(here, [{ x: 60, y: 130 }, { x: 300, y: 0 }], "right"), 1);
    assert.equal(nearestThatWay(here, others, "left"), -1);
  });
});
