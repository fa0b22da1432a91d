// The simulation's events and traits as typed, read into the API's request, and the
// server's refusal read back.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  parseTraits, readAfter, readEvents, simulationError, traitsFromRows, typedValue,
} from "../../static/js/designer/simulation-input.js";

describe("readEvents", () => {
  test("one event per line: when, the event, its details as JSON", () => {
    const typed = [
      "now cart_abandoned {\"cart_value\": 120}",
      "",
      "  30 minutes page_viewed",
      "2 hours order_completed {\"total\": 40, \"items\": [1, 2]}",
      "3 days unsubscribed",
    ].join("\n");
    assert.deepEqual(readEvents(typed), [
      { after: "PT0S", type: "cart_abandoned", properties: { cart_value: 120 } },
      { after: "PT30M", type: "page_viewed", properties: {} },
      { after: "PT2H", type: "order_completed", properties: { total: 40, items: [1, 2] } },
      { after: "P3D", type: "unsubscribed", properties: {} },
    ]);
  });

  test("nothing typed is no events", () => {
    assert.deepEqual(readEvents(""), []);
    assert.deepEqual(readEvents("\n  \n"), []);
  });

  test("a line that cannot be read is named by its number, blank lines counted", () => {
    assert.throws(() => readEvents("now cart_abandoned\n\ncart_abandoned"), {
      message: /^Line 3: write when it comes, then the event/,
    });
    assert.throws(() => readEvents("now"), { message: /^Line 1: write when it comes/ });
    assert.throws(() => readEvents("soon cart_abandoned"), { message: /^Line 1: write when it comes/ });
  });

  test("details that are not JSON say so, with the parser's reason", () => {
    assert.throws(() => readEvents("now a\n2 hours order_completed {total: 40}"), {
      message: /^Line 2: the event's details after its name must be JSON, e\.g\. \{"cart_value": 120\} \(.+\)\.$/,
    });
  });
});

describe("readAfter", () => {
  test("words and ISO durations", () => {
    const cases = {
      now: "PT0S", NOW: "PT0S", "1 minute": "PT1M", "45 min": "PT45M", "5m": "PT5M", "2 hours": "PT2H",
      "1h": "PT1H", "3 days": "P3D", "1d": "P1D", "1 week": "P1W", "2w": "P2W",
      PT2H: "PT2H", pt90m: "PT90M", P1D: "P1D",
    };
    for (const [words, duration] of Object.entries(cases)) assert.equal(readAfter(words), duration, words);
  });
});

describe("traits", () => {
  test("a value typed in the table is a number, true/false, JSON or text", () => {
    assert.equal(typedValue("42"), 42);
    assert.equal(typedValue("-1.5"), -1.5);
    assert.equal(typedValue("true"), true);
    assert.equal(typedValue("false"), false);
    assert.deepEqual(typedValue("[\"a\", 1]"), ["a", 1]);
    assert.deepEqual(typedValue("{\"city\": \"Oslo\"}"), { city: "Oslo" });
    assert.equal(typedValue("{not json"), "{not json");
    assert.equal(typedValue("vip"), "vip");
    assert.equal(typedValue("1e3"), "1e3");
  });

  test("the table's rows, trimmed; an empty row is skipped, a value needs a name", () => {
    assert.deepEqual(traitsFromRows([[" first_name ", " Ada "], ["", ""], ["orders", "3"]]), { first_name: "Ada", orders: 3 });
    assert.throws(() => traitsFromRows([["tier", "vip"], ["  ", "7"]]), { message: "Trait 2: give it a name, e.g. tier." });
  });

  test("traits as JSON must be an object", () => {
    assert.deepEqual(parseTraits("  "), {});
    assert.deepEqual(parseTraits("{\"tier\": \"vip\"}"), { tier: "vip" });
    assert.throws(() => parseTraits("{tier: vip}"), { message: /^The traits cannot be read/ });
    assert.throws(() => parseTraits("[1, 2]"), { message: /^Write the traits as names with their values/ });
    assert.throws(() => parseTraits("null"), { message: /^Write the traits as names with their values/ });
  });
});

describe("simulationError", () => {
  test("an error about an event names its line; others are as the server says", () => {
    assert.equal(simulationError({ error: "not a duration", field: "events[2].after" }), "Event line 3: not a duration");
    assert.equal(simulationError({ error: "the draft has problems" }), "the draft has problems");
    assert.equal(simulationError({ error: "bad traits", field: "customer.traits" }), "bad traits");
  });
});
