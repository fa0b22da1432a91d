// The words the canvas puts on steps and edges. Pure: a step is either an X6 node or its plain
// data ({type, config, label, summary}), so Node's test runner can import this module.

// A port id as X6 keeps it ("out:yes") to the port's name in the document ("yes"); an edge
// without a source port leaves the step's one output, "out".
export const portName = (portId) => (portId || "out:out").replace(/^out:/, "");

// The words on a branch edge: yes/no, got the event/timed out, the split's share, the case.
export function edgeLabel(source, port) {
  if (!source || port === "out") return "";
  const data = (source.getData ? source.getData() : source) || {};
  const config = data.config || {};
  switch (data.type) {
    case "condition":
      return port === "true" ? "yes" : port === "false" ? "no" : port;
    case "wait_for_event":
      if (port === "event") return config.event ? `got ${config.event}` : "got the event";
      return port === "timeout" ? "timed out" : port;
    case "split": {
      const branches = Array.isArray(config.branches) ? config.branches : [];
      const branch = branches.find((b) => b && b.port === port);
      return branch && typeof branch.percent === "number" ? `${port} ${branch.percent}%` : port;
    }
    case "switch":
      return port === "default" ? "otherwise" : port;
    case "decide":
      return port === "default" ? "otherwise" : port === "error" ? "if it fails" : port;
    case "send":
      // suppressed: a brand-wide policy (frequency cap, holdout) kept the message back.
      if (port === "suppressed") return "if held back";
      return port === "error" ? "if it fails" : port;
    case "webhook":
      return port === "error" ? "if it fails" : port;
    default:
      return port;
  }
}

// A step's name: the marketer's label, else what it does (the server's summary), else the
// name of its type in the step list (`byType`, the palette's items by type).
export function stepName(node, byType) {
  const data = node.getData ? node.getData() : node;
  return data.label || data.summary || (byType[data.type] || {}).label || data.type;
}

// The box behind an edge's words is sized from their length, not measured: measuring each
// label's text forces the browser to lay out the whole canvas again, label after label.
// (X6's own default label sizes its box by measuring: every edge gets this one instead.)
export const EDGE_LABEL = {
  markup: [{ tagName: "rect", selector: "body" }, { tagName: "text", selector: "label" }],
  attrs: {
    label: { fontSize: 12, fill: "#24324d", fontWeight: 600, textAnchor: "middle", textVerticalAnchor: "middle", pointerEvents: "none" },
    body: { fill: "#ffffff", stroke: "#b9c4d8", strokeWidth: 1, rx: 4, ry: 4, height: 18, y: -9 },
  },
  // Past the "+" below the port, which stays clear of the words.
  position: { distance: 40 },
};

export function edgeLabelSpec(text) {
  const width = Math.round(text.length * 7.3 + 12);
  return { attrs: { label: { text }, body: { width, x: -width / 2 } } };
}
