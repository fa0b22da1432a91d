// A step's ports: one input on top (none for the trigger), and below it one output per port
// the server names for its type and config (a condition's "true" and "false", a split's
// branches...). Pure, so Node's test runner can import it.
//
// `page` in these functions is what they need to know of the page: `editable` (whether the
// journey can be changed here) and `byType` (the step list's items by type).

import { edgeLabel, stepName } from "./labels.js";

export const PORT_GROUPS = {
  in: {
    position: "top",
    attrs: { circle: { r: 6, magnet: "passive", stroke: "#5a6b8c", strokeWidth: 2, fill: "#fff" } },
  },
  out: {
    position: "bottom",
    // Below each output, under its name, a "+" adds the next step there (see add-after.js).
    // It belongs to the port's label, so that the port itself stays the one circle that
    // edges are drawn from.
    label: {
      position: { name: "bottom", args: { y: 10 } },
      markup: [
        { tagName: "text", selector: "text" },
        {
          tagName: "g",
          selector: "add",
          className: "port-add",
          children: [
            { tagName: "circle", selector: "addBody" },
            { tagName: "path", selector: "addSign" },
          ],
        },
      ],
    },
    attrs: {
      circle: { r: 7, magnet: true, stroke: "#1f6feb", strokeWidth: 2, fill: "#fff", cursor: "crosshair" },
      // The output's name sits right of its "+", both clear of the edges that run across
      // halfway between two rows of steps.
      text: { fontSize: 12, fill: "#24324d", x: 13, y: 10, textAnchor: "start", dominantBaseline: "central" },
      add: { transform: "translate(0, 10)", cursor: "pointer", tabindex: 0, role: "button" },
      addBody: { r: 8, fill: "#fff", stroke: "#1f6feb", strokeWidth: 1.5 },
      addSign: { d: "M -4 0 H 4 M 0 -4 V 4", stroke: "#1f6feb", strokeWidth: 2, pointerEvents: "none" },
    },
  },
};

// An output port is named under the step until an edge leaves it; the edge then carries
// the name (see edgeLabel).
export function portText(port, isConnected, node) {
  if (port.name === "out" || isConnected) return "";
  return (node && edgeLabel(node, port.name)) || port.name;
}

// The "+" below each output of an editable journey: its attributes (shown or not, and
// what it says to a screen reader). Below a connected output it puts the step in between.
export function addAttrs(port, isConnected, step, page) {
  if (!page.editable) return { display: "none", tabindex: -1, "aria-label": null };
  const words = port.name === "out" ? "" : ` (${edgeLabel(step, port.name) || port.name})`;
  return { display: null, tabindex: 0, "aria-label": `Add a step after ${stepName(step, page.byType)}${words}` };
}

// X6's port items of a step. `step`: the node's {type, config}, which name its ports;
// `ports`: the server's list for it ({name, required}); `connected`: the ids of its outputs
// that an edge leaves ("out:yes"), whose names the edges carry instead.
export function portItems(step, ports, connected, page) {
  const items = step.type === "trigger" ? [] : [{ id: "in", group: "in" }];
  for (const port of inOrder(ports)) {
    const id = `out:${port.name}`;
    const isConnected = Boolean(connected && connected.has(id));
    items.push({
      id,
      group: "out",
      required: port.required,
      attrs: { text: { text: portText(port, isConnected, step) }, add: addAttrs(port, isConnected, step, page) },
    });
  }
  return items;
}

// The outputs left to right. With an odd number of them, the step's usual way on ("out": a
// send's, between "if it fails" and "if held back") goes in the middle, right above the
// input of the step below: that edge runs straight down and no other output seems to lead
// where it goes.
export function inOrder(ports) {
  const usual = ports.findIndex((port) => port.name === "out");
  if (usual < 0 || ports.length % 2 === 0) return ports;
  const others = ports.filter((_, i) => i !== usual);
  const middle = (ports.length - 1) / 2;
  return [...others.slice(0, middle), ports[usual], ...others.slice(middle)];
}

// A step's output ports (X6's, left to right) with its usual way on first: the one a new
// step in between continues from, and the one the keyboard's Connect offers first.
export function usualFirst(ports) {
  const outs = ports.filter((port) => port.group === "out");
  return [...outs.filter((port) => port.id === "out:out"), ...outs.filter((port) => port.id !== "out:out")];
}
