// The live figures of a published journey, per step and for the whole journey.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ZERO, count, journeyFigures, stepFigures } from "../../static/js/designer/figures.js";

// As the server sends them in the liveCounts event's "nodes".
const counts = {
  start: { entered: 400, waiting: 0, completed: 400, failed: 0 },
  wait: { entered: 400, waiting: 120, completed: 280, failed: 0 },
  vip: { entered: 70, waiting: 0, completed: 70, failed: 0 },
  mail: { entered: 210, waiting: 0, completed: 205, failed: 5, deliveries: { delivered: 190, suppressed: 15, failed: 5 } },
};

test("a step's arrivals as a share of the arrivals at the steps before it", () => {
  assert.equal(stepFigures(counts, "vip", ["wait"]).share, 18);
  // From two steps, their arrivals add up.
  assert.equal(stepFigures(counts, "mail", ["vip", "wait"]).share, 45);
  // An edge from the step to itself does not count.
  assert.equal(stepFigures(counts, "wait", ["start", "wait"]).share, 100);
  // A step some did not reach never reads 100%, however it rounds.
  assert.equal(stepFigures({ a: { entered: 200 }, b: { entered: 199 } }, "b", ["a"]).share, 99);
});

test("no share without steps before it, or when none arrived there", () => {
  assert.equal(stepFigures(counts, "start", []).share, null);
  assert.equal(stepFigures(counts, "vip", ["nobody"]).share, null);
});

test("a step's own figures come along, zeros for a step no one reached", () => {
  assert.deepEqual(stepFigures(counts, "mail", ["vip"]), { ...counts.mail, share: 300 });
  assert.deepEqual(stepFigures(counts, "end", ["mail"]), { ...ZERO, share: 0 });
});

test("the journey's line and the cards' numbers", () => {
  assert.equal(journeyFigures({ entered: 1204, active: 120, completed: 1000, converted: 84 }),
    "1204 entered, 120 in it now, 1000 completed, 84 converted.");
  assert.equal(count(1204), "1,204");
  assert.equal(count(undefined), "0");
});
