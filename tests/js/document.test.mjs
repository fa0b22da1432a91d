// The journey document built from the canvas, and the cells a loaded draft is drawn with.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { connectedPorts, journeyDocument, overlapping, planDrawing, routeOf } from "../../static/js/designer/document.js";
import { CART_RECOVERY_PORTS, cartRecovery, draftAnswer, editablePage, readOnlyPage } from "./journeys.mjs";

// What the canvas reads off the graph for journeyDocument, here taken from the drawn specs.
function readBack(plan) {
  const cells = [...plan.steps, ...plan.notes];
  return {
    cellIds: new Set(cells.map((spec) => spec.id)),
    steps: plan.steps.map((spec) => ({ id: spec.id, x: spec.x, y: spec.y, ...spec.data })),
    notes: plan.notes.map((spec) => ({ id: spec.id, x: spec.x, y: spec.y, text: spec.data.text })),
    edges: plan.edges.map((spec) => ({
      from: spec.source.cell,
      sourcePort: spec.source.port,
      to: spec.target.cell,
      route: spec.router.name === "normal" ? spec.vertices : null,
    })),
  };
}

// The cart recovery starter with a place for every step, apart enough not to overlap.
function laidOut() {
  const doc = cartRecovery();
  doc.nodes.forEach((node, index) => { doc.layout[node.id] = { x: 80, y: 60 + index * 200 }; });
  return doc;
}

describe("planDrawing", () => {
  test("a starter without places is arranged on open, its steps first put on a grid", () => {
    const plan = planDrawing(draftAnswer(cartRecovery()), editablePage);
    assert.equal(plan.arrange, true);
    assert.deepEqual(plan.routing, { name: "manhattan", args: { padding: 16 } });
    assert.deepEqual(plan.steps.map((spec) => [spec.id, spec.x, spec.y]), [
      ["start", 80, 60], ["wait", 380, 60], ["vip", 680, 60], ["call", 980, 60], ["mail", 80, 240], ["end", 380, 240],
    ]);
    // Arranged edges follow the routes Arrange gives them: none yet.
    assert.equal(plan.edges.length, 7);
    for (const edge of plan.edges) {
      assert.deepEqual(edge.router, { name: "normal" });
      assert.deepEqual(edge.vertices, []);
    }
  });

  test("ports: the trigger has no input; an output an edge leaves is named on the edge", () => {
    const plan = planDrawing(draftAnswer(cartRecovery()), editablePage);
    const step = (id) => plan.steps.find((spec) => spec.id === id);
    assert.deepEqual(step("start").ports.items.map((port) => port.id), ["out:out"]);
    assert.deepEqual(step("wait").ports.items.map((port) => port.id), ["in", "out:event", "out:timeout"]);
    assert.deepEqual(step("wait").ports.items.slice(1).map((port) => port.attrs.text.text), ["", ""]);
    // The send's fallback output has no edge: its words stay under the step.
    const [, out, error] = step("call").ports.items;
    assert.equal(out.attrs.text.text, "");
    assert.equal(error.attrs.text.text, "if it fails");
    assert.equal(error.required, false);
    assert.deepEqual(step("end").ports.items, [{ id: "in", group: "in" }]);
  });

  test("edges carry the words of their branch", () => {
    const plan = planDrawing(draftAnswer(cartRecovery()), editablePage);
    const words = Object.fromEntries(plan.edges.map((edge) => [
      `${edge.source.cell} ${edge.source.port} ${edge.target.cell}`,
      edge.labels.map((label) => label.attrs.label.text).join(),
    ]));
    assert.deepEqual(words, {
      "start out:out wait": "",
      "wait out:event end": "got order_completed",
      "wait out:timeout vip": "timed out",
      "vip out:true call": "yes",
      "vip out:false mail": "no",
      "call out:out end": "",
      "mail out:out end": "",
    });
  });

  test("a step's data holds its summary from the server, else its type's", () => {
    const summaries = { vip: "If tier is vip" };
    const plan = planDrawing(draftAnswer(cartRecovery(), summaries), readOnlyPage);
    const step = (id) => plan.steps.find((spec) => spec.id === id);
    assert.equal(step("vip").data.summary, "If tier is vip");
    assert.equal(step("end").data.summary, "End the journey");
    assert.deepEqual(step("call").data.config, cartRecovery().nodes[3].config);
    // A read-only journey has no "+" under its outputs.
    assert.equal(step("vip").ports.items[1].attrs.add.display, "none");
  });

  test("a laid-out journey keeps its places and the routes kept in its layout", () => {
    const doc = laidOut();
    doc.layout.routes = { "vip:true": [[100, 700], [400, 700]], "vip:false": "not a route" };
    const plan = planDrawing(draftAnswer(doc), editablePage);
    assert.equal(plan.arrange, false);
    assert.deepEqual(plan.steps.map((spec) => spec.y), [60, 260, 460, 660, 860, 1060]);
    const edge = (port) => plan.edges.find((spec) => spec.source.cell === "vip" && spec.source.port === port);
    assert.deepEqual(edge("out:true").vertices, [{ x: 100, y: 700 }, { x: 400, y: 700 }]);
    assert.deepEqual(edge("out:true").router, { name: "normal" });
    // Without a route the router finds the way.
    assert.deepEqual(edge("out:false").vertices, []);
    assert.deepEqual(edge("out:false").router, plan.routing);
  });

  test("a route kept from before a send's usual output moved to the middle is dropped", () => {
    const doc = laidOut();
    const at = doc.layout.mail; // 264 wide: three outputs at 44, 132 and 220 from its left
    doc.layout.routes = {
      "mail:out": [[at.x + 44, at.y + 124], [at.x + 300, at.y + 124]], // left, where it was
      "call:out": [[doc.layout.call.x + 132, 900], [500, 900]], // the middle, where it is
    };
    const ports = { ...CART_RECOVERY_PORTS, mail: [...CART_RECOVERY_PORTS.mail, { name: "suppressed", required: false }], call: [...CART_RECOVERY_PORTS.call, { name: "suppressed", required: false }] };
    const plan = planDrawing({ ...draftAnswer(doc), ports }, editablePage);
    const edge = (from) => plan.edges.find((spec) => spec.source.cell === from && spec.source.port === "out:out");
    assert.deepEqual(edge("mail").vertices, []);
    assert.deepEqual(edge("mail").router, plan.routing);
    assert.deepEqual(edge("call").vertices, [{ x: doc.layout.call.x + 132, y: 900 }, { x: 500, y: 900 }]);
  });

  test("steps drawn on top of each other are arranged again", () => {
    const doc = laidOut();
    doc.layout.wait = { x: 100, y: 80 };
    assert.equal(planDrawing(draftAnswer(doc), editablePage).arrange, true);
  });

  test("notes come from the layout; edges to steps that are not there are left out", () => {
    const doc = laidOut();
    doc.layout.notes = [
      { id: "note_1", x: 500, y: 40, text: "Ask legal" },
      { id: "vip", x: 0, y: 0, text: "a note may not take a step's id" },
      null,
    ];
    doc.edges.push({ from: "vip", port: "true", to: "gone" });
    const plan = planDrawing(draftAnswer(doc), editablePage);
    assert.deepEqual(plan.notes.map((spec) => [spec.id, spec.data]), [["note_1", { note: true, text: "Ask legal" }]]);
    assert.equal(plan.edges.length, 7);
  });

  test("a very large journey routes its edges with the cheaper router", () => {
    const doc = { nodes: [], edges: [], layout: {} };
    for (let i = 0; i < 81; i += 1) doc.nodes.push({ id: `exit_${i}`, type: "exit", config: {} });
    const plan = planDrawing({ document: doc, ports: {}, summaries: {} }, editablePage);
    assert.equal(plan.routing.name, "orth");
  });
});

describe("journeyDocument", () => {
  test("the drawn starter reads back as the same steps and edges", () => {
    const doc = cartRecovery();
    const plan = planDrawing(draftAnswer(doc), editablePage);
    const saved = journeyDocument(doc, readBack(plan));
    assert.deepEqual(saved.nodes, doc.nodes);
    assert.deepEqual(saved.edges, doc.edges);
    // Everything else the document holds is sent back as it came.
    for (const key of ["schema", "name", "entry", "goal", "exit_on"]) assert.deepEqual(saved[key], doc[key]);
    assert.deepEqual(saved.layout.mail, { x: 80, y: 240 });
    assert.deepEqual(saved.layout.routes["vip:false"], []);
  });

  test("edge ports: X6's out: prefix is dropped, and the default output is left unnamed", () => {
    const saved = journeyDocument({}, {
      cellIds: new Set(["a", "b", "c"]),
      steps: [],
      notes: [],
      edges: [
        { from: "a", sourcePort: "out:out", to: "b", route: null },
        { from: "a", sourcePort: null, to: "c", route: null },
        { from: "b", sourcePort: "out:true", to: "c", route: null },
        { from: "c", sourcePort: "out:out", to: null, route: null }, // still being drawn
      ],
    });
    assert.deepEqual(saved.edges, [{ from: "a", to: "b" }, { from: "a", to: "c" }, { from: "b", to: "c", port: "true" }]);
    assert.equal("routes" in saved.layout, false);
  });

  test("places and routes are rounded; notes are kept in layout.notes", () => {
    const saved = journeyDocument({}, {
      cellIds: new Set(["a", "b", "note_1"]),
      steps: [
        { id: "a", x: 10.4, y: 20.6, type: "condition", label: "VIP?", config: { rule: {} } },
        { id: "b", x: 0, y: 300, type: "exit", label: "", config: {} },
      ],
      notes: [{ id: "note_1", x: 5.5, y: 6.2, text: "Ask legal" }],
      edges: [{ from: "a", sourcePort: "out:false", to: "b", route: [{ x: 1.2, y: 2.7 }] }],
    });
    assert.deepEqual(saved.nodes, [
      { id: "a", type: "condition", label: "VIP?", config: { rule: {} } },
      { id: "b", type: "exit", config: {} },
    ]);
    assert.deepEqual(saved.layout, {
      a: { x: 10, y: 21 },
      b: { x: 0, y: 300 },
      notes: [{ id: "note_1", x: 6, y: 6, text: "Ask legal" }],
      routes: { "a:false": [[1, 3]] },
    });
  });

  test("layout keys of no cell stay; notes and routes no longer on the canvas go", () => {
    const base = {
      name: "Kept",
      layout: {
        a: { x: 0, y: 0 },
        gone: { x: 1, y: 1 },
        note_2: { x: 2, y: 2 }, // a cell that is not a step has no place of its own there
        zoom: 0.5,
        notes: [{ id: "note_1", x: 0, y: 0, text: "old" }],
        routes: { "a:out": [[0, 0]] },
      },
    };
    const saved = journeyDocument(base, {
      cellIds: new Set(["a", "note_2"]),
      steps: [{ id: "a", x: 40, y: 50, type: "exit", config: {} }],
      notes: [],
      edges: [],
    });
    assert.equal(saved.name, "Kept");
    assert.deepEqual(saved.layout, { a: { x: 40, y: 50 }, gone: { x: 1, y: 1 }, zoom: 0.5 });
    // The base itself is left as it was.
    assert.equal(base.layout.notes.length, 1);
  });
});

describe("reading a layout", () => {
  test("routeOf reads [x, y] pairs and skips anything else", () => {
    const layout = { routes: { "vip:true": [[1, 2], [3], "x", [4, 5]] } };
    assert.deepEqual(routeOf(layout, "vip", "true"), [{ x: 1, y: 2 }, { x: 4, y: 5 }]);
    assert.equal(routeOf(layout, "vip", "false"), null);
    assert.equal(routeOf({}, "vip", "true"), null);
  });

  test("overlapping compares places with the size of a step", () => {
    const nodes = [{ id: "a" }, { id: "b" }];
    assert.equal(overlapping(nodes, { a: { x: 0, y: 0 }, b: { x: 263, y: 91 } }), true);
    assert.equal(overlapping(nodes, { a: { x: 0, y: 0 }, b: { x: 264, y: 0 } }), false);
    assert.equal(overlapping(nodes, { a: { x: 0, y: 0 }, b: { x: 0, y: 92 } }), false);
    assert.equal(overlapping(nodes, { a: { x: 0, y: 0 } }), false);
  });

  test("connectedPorts lists each step's outputs that edges leave", () => {
    const connected = connectedPorts(cartRecovery().edges);
    assert.deepEqual([...connected.get("wait")], ["out:event", "out:timeout"]);
    assert.deepEqual([...connected.get("start")], ["out:out"]);
    assert.equal(connected.has("end"), false);
  });
});
