// A step's ports per type, and the words on ports and edges.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { edgeLabel, edgeLabelSpec, portName, stepName } from "../../static/js/designer/labels.js";
import { addAttrs, inOrder, portItems, portText, usualFirst } from "../../static/js/designer/ports.js";
import { CART_RECOVERY_PORTS, byType, cartRecovery, editablePage, readOnlyPage } from "./journeys.mjs";

const step = (id) => cartRecovery().nodes.find((node) => node.id === id);

describe("portItems", () => {
  test("each type's outputs follow its ports, under an input unless it is the trigger", () => {
    const ids = (id) => portItems(step(id), CART_RECOVERY_PORTS[id], null, editablePage).map((port) => port.id);
    assert.deepEqual(ids("start"), ["out:out"]);
    assert.deepEqual(ids("wait"), ["in", "out:event", "out:timeout"]);
    assert.deepEqual(ids("vip"), ["in", "out:true", "out:false"]);
    assert.deepEqual(ids("mail"), ["in", "out:out", "out:error"]);
    assert.deepEqual(ids("end"), ["in"]);
  });

  test("a step's usual way on is its middle output when it has an odd number of them", () => {
    const names = (list) => inOrder(list.map((name) => ({ name }))).map((port) => port.name);
    assert.deepEqual(names(["out", "error", "suppressed"]), ["error", "out", "suppressed"]);
    assert.deepEqual(names(["out", "error"]), ["out", "error"]);
    assert.deepEqual(names(["true", "false"]), ["true", "false"]);
    assert.deepEqual(names(["a", "b", "c"]), ["a", "b", "c"]);
    const send = portItems(step("mail"), [{ name: "out" }, { name: "error" }, { name: "suppressed" }], null, editablePage);
    assert.deepEqual(send.map((port) => port.id), ["in", "out:error", "out:out", "out:suppressed"]);
    // In between and for the keyboard's Connect, the usual way on still comes first.
    assert.deepEqual(usualFirst(send).map((port) => port.id), ["out:out", "out:error", "out:suppressed"]);
    const vip = portItems(step("vip"), CART_RECOVERY_PORTS.vip, null, editablePage);
    assert.deepEqual(usualFirst(vip).map((port) => port.id), ["out:true", "out:false"]);
  });

  test("an output is named under the step until an edge leaves it", () => {
    const names = (connected) => portItems(step("vip"), CART_RECOVERY_PORTS.vip, connected, editablePage)
      .slice(1).map((port) => port.attrs.text.text);
    assert.deepEqual(names(null), ["yes", "no"]);
    assert.deepEqual(names(new Set(["out:true"])), ["", "no"]);
    assert.deepEqual(names(new Set(["out:true", "out:false"])), ["", ""]);
  });

  test("outputs keep whether they must be connected", () => {
    const items = portItems(step("call"), CART_RECOVERY_PORTS.call, null, editablePage);
    assert.deepEqual(items.map((port) => [port.id, port.group, port.required]), [
      ["in", "in", undefined], ["out:out", "out", true], ["out:error", "out", false],
    ]);
  });

  test("the + under each output says what it adds after, and only when editable", () => {
    const [, yes] = portItems({ ...step("vip"), summary: "If tier is vip" }, CART_RECOVERY_PORTS.vip, null, editablePage);
    assert.deepEqual(yes.attrs.add, { display: null, tabindex: 0, "aria-label": "Add a step after If tier is vip (yes)" });
    const [, out] = portItems(step("mail"), CART_RECOVERY_PORTS.mail, null, editablePage);
    assert.equal(out.attrs.add["aria-label"], "Add a step after Send");
    const [, shut] = portItems(step("vip"), CART_RECOVERY_PORTS.vip, null, readOnlyPage);
    assert.deepEqual(shut.attrs.add, { display: "none", tabindex: -1, "aria-label": null });
  });

  test("portText and addAttrs take a port by name", () => {
    const wait = step("wait");
    assert.equal(portText({ name: "event" }, false, wait), "got order_completed");
    assert.equal(portText({ name: "out" }, false, wait), "");
    assert.equal(portText({ name: "other" }, false, null), "other");
    assert.equal(addAttrs({ name: "timeout" }, false, { ...wait, label: "Bought?" }, editablePage)["aria-label"],
      "Add a step after Bought? (timed out)");
  });
});

describe("edge words", () => {
  test("each branching type names its outputs", () => {
    const cases = [
      [{ type: "condition" }, "true", "yes"],
      [{ type: "condition" }, "false", "no"],
      [{ type: "wait_for_event", config: { event: "order_completed" } }, "event", "got order_completed"],
      [{ type: "wait_for_event", config: { event: "" } }, "event", "got the event"],
      [{ type: "wait_for_event", config: {} }, "timeout", "timed out"],
      [{ type: "split", config: { branches: [{ port: "a", percent: 45 }, { port: "b", percent: 55 }] } }, "b", "b 55%"],
      [{ type: "split", config: { branches: [{ port: "a" }] } }, "a", "a"],
      [{ type: "split", config: { branches: "broken" } }, "a", "a"],
      [{ type: "switch", config: {} }, "default", "otherwise"],
      [{ type: "switch", config: {} }, "vip", "vip"],
      [{ type: "send", config: {} }, "error", "if it fails"],
      [{ type: "send", config: {} }, "suppressed", "if held back"],
      [{ type: "webhook", config: {} }, "suppressed", "suppressed"],
      [{ type: "webhook", config: {} }, "error", "if it fails"],
      [{ type: "update_profile", config: {} }, "other", "other"],
      [{ type: "condition" }, "out", ""],
      [null, "true", ""],
    ];
    for (const [source, port, words] of cases) assert.equal(edgeLabel(source, port), words, `${JSON.stringify(source)} ${port}`);
  });

  test("an X6 node is read through its data", () => {
    const node = { getData: () => ({ type: "condition", config: {} }) };
    assert.equal(edgeLabel(node, "false"), "no");
    assert.equal(stepName({ getData: () => ({ type: "exit", label: "Done" }) }, byType), "Done");
  });

  test("a step's name: its label, else its summary, else its type's label, else its type", () => {
    assert.equal(stepName({ type: "send", label: "Nudge", summary: "Send via Email" }, byType), "Nudge");
    assert.equal(stepName({ type: "send", label: "", summary: "Send via Email" }, byType), "Send via Email");
    assert.equal(stepName({ type: "send" }, byType), "Send");
    assert.equal(stepName({ type: "mystery" }, byType), "mystery");
  });

  test("portName drops X6's prefix; an edge without a port leaves the default output", () => {
    assert.equal(portName("out:timeout"), "timeout");
    assert.equal(portName("out:out"), "out");
    assert.equal(portName(null), "out");
    assert.equal(portName(undefined), "out");
  });

  test("the box behind an edge's words is sized from their length and centred", () => {
    assert.deepEqual(edgeLabelSpec("yes"), { attrs: { label: { text: "yes" }, body: { width: 34, x: -17 } } });
    assert.equal(edgeLabelSpec("got order_completed").attrs.body.width, 151);
  });
});
