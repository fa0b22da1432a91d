// The journey canvas: draws the draft with X6, edits it, and autosaves it with its revision.
// The server is the judge of a document: every save answers with its problems and the ports
// of each node, which the canvas then shows.
(function () {
  "use strict";

  const root = document.getElementById("designer");
  if (!root || !window.X6) return;

  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const draftUrl = root.dataset.draftUrl;
  const editable = root.dataset.editable === "true";
  const catalogue = JSON.parse(document.getElementById("palette-data").textContent);
  const byType = Object.fromEntries(catalogue.map((item) => [item.type, item]));
  const statusLine = document.getElementById("save-status");
  const problemList = document.getElementById("problems");
  const publishLink = document.getElementById("publish-link");
  const panel = document.getElementById("node-panel");
  const icons = root.dataset.icons;

  // The designer fills the window below the page's head (the head's height depends on the
  // journey's name and the width), so its height is measured rather than guessed.
  function sizeDesigner() {
    const top = root.getBoundingClientRect().top + window.scrollY;
    root.style.setProperty("--designer-height", `${Math.max(416, Math.floor(window.innerHeight - top - 8))}px`);
  }
  sizeDesigner();
  window.addEventListener("resize", sizeDesigner);
  // The head may change height as the page settles (fonts, a wrapped title): follow it.
  const head = document.querySelector(".designer-head");
  if (head && window.ResizeObserver) new ResizeObserver(sizeDesigner).observe(head);
  const NODE_W = 264;
  const NODE_H = 92;
  const RANK_GAP = 64; // between rows of steps: room for an edge's words below its port

  let revision = 0;
  let documentBase = {};
  let loading = false;
  let saveTimer = null;
  let saving = false;
  let saveAgain = false;
  let conflicted = false;

  const graph = new X6.Graph({
    container: document.getElementById("canvas"),
    autoResize: true,
    async: false, // draw a loaded journey in one go rather than frame by frame
    // Only the steps and edges in view (and a margin around it) get an SVG view; the others
    // are drawn when panning or zooming brings them in.
    virtual: { enabled: true, margin: 160 },
    grid: { visible: true, size: 10 },
    background: { color: "#fbfbfd" },
    // Dragging the background moves the view (Shift + drag selects several steps); the wheel,
    // or a pinch, zooms around the pointer.
    panning: { enabled: true, eventTypes: ["leftMouseDown", "rightMouseDown"] },
    mousewheel: { enabled: true, zoomAtMousePosition: true, factor: 1.1, minScale: 0.2, maxScale: 2 },
    interacting: () => ({ nodeMovable: editable, edgeMovable: editable, magnetConnectable: editable }),
    connecting: {
      snap: { radius: 24 },
      allowBlank: false,
      allowLoop: false,
      allowNode: false,
      allowEdge: false,
      allowMulti: true,
      highlight: true,
      connector: { name: "rounded", args: { radius: 8 } },
      validateMagnet: ({ magnet }) => editable && magnet.getAttribute("port-group") === "out",
      validateConnection: ({ targetMagnet, sourceCell, targetCell }) =>
        Boolean(targetMagnet) &&
        targetMagnet.getAttribute("port-group") === "in" &&
        sourceCell !== targetCell,
      createEdge: () => graph.createEdge(edgeStyle()),
    },
  });

  // The bundled build does not add the plugins' shortcut methods to Graph: call the plugins.
  const selection = new X6.Selection({ enabled: true, multiple: true, rubberband: true, modifiers: "shift", showNodeSelectionBox: true });
  // The canvas's keys with Ctrl (undo, redo, copy, paste) work wherever the focus is on the
  // page, except while typing in a field or a dialog: Ctrl+Z right after adding a step from
  // the step list undoes it. Keys without Ctrl (C, F, +, -, the arrows, Enter, Delete) only
  // while the canvas itself has the focus, so they never fire while someone uses a button or
  // reads or types elsewhere.
  const typing = (target) => Boolean(target && target.closest &&
    target.closest("input, textarea, select, [contenteditable], dialog, #node-panel, #simulate"));
  const onCanvas = (target) => !target || target === document.body || Boolean(target.closest && target.closest("#canvas"));
  const keyboard = new X6.Keyboard({
    enabled: true,
    global: true,
    guard: (event) => !typing(event.target) && (event.ctrlKey || event.metaKey || onCanvas(event.target)),
  });
  const clipboard = new X6.Clipboard({ enabled: true });
  const history = new X6.History({ enabled: true, stackSize: 100, beforeAddCommand: () => !loading });
  graph.use(selection);
  graph.use(new X6.Snapline({ enabled: true }));
  graph.use(keyboard);
  graph.use(clipboard);
  graph.use(history);

  // The minimap shows each step as a plain box and leaves edges out: drawing the full views a
  // second time cost as much as the canvas itself. It is built once the canvas is on screen.
  class MapNodeView extends X6.NodeView {
    renderMarkup() { return this.renderJSONMarkup({ tagName: "rect", selector: "body" }); }
    renderPorts() {}
    update() {
      const size = this.cell.getSize();
      const body = this.container.firstChild;
      if (!body) return;
      body.setAttribute("width", size.width);
      body.setAttribute("height", size.height);
      body.setAttribute("rx", 8);
      body.setAttribute("fill", "#9aa7bf");
    }
  }
  let minimap = null;
  function addMinimap() {
    if (minimap) return;
    minimap = new X6.MiniMap({
      container: document.getElementById("minimap"),
      width: 200,
      height: 140,
      padding: 10,
      graphOptions: {
        async: true,
        createCellView: (cell) => (cell.isNode() ? MapNodeView : null),
      },
    });
    graph.use(minimap);
    // The minimap refits itself when the journey changes; its frame must follow, or it shows
    // the visible area at the minimap's previous scale.
    const map = minimap.targetGraph;
    if (map) for (const name of ["scale", "translate", "resize"]) map.on(name, () => minimap.updateViewport());
  }

  // ---- drawing ----------------------------------------------------------------------------

  // Manhattan routing steers around steps but costs too much on very large journeys.
  let routing = { name: "manhattan", args: { padding: 16 } };
  // An edge with a route from Arrange goes straight through its points (they keep clear of
  // every step); without one, the router finds a way around the steps.
  function edgeStyle(routed) {
    return { shape: "journey-edge", router: routed ? { name: "normal" } : routing };
  }

  const portGroups = {
    in: {
      position: "top",
      attrs: { circle: { r: 6, magnet: "passive", stroke: "#5a6b8c", strokeWidth: 2, fill: "#fff" } },
    },
    out: {
      position: "bottom",
      // Below each output, under its name, a "+" adds the next step there (see addAfter).
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
  function portText(port, isConnected, node) {
    if (port.name === "out" || isConnected) return "";
    return (node && edgeLabel(node, port.name)) || port.name;
  }

  // The "+" below each output of an editable journey: its attributes (shown or not, and
  // what it says to a screen reader). Below a connected output it puts the step in between.
  function addAttrs(port, isConnected, step) {
    if (!editable) return { display: "none", tabindex: -1, "aria-label": null };
    const words = port.name === "out" ? "" : ` (${edgeLabel(step, port.name) || port.name})`;
    return { display: null, tabindex: 0, "aria-label": `Add a step after ${stepName(step)}${words}` };
  }

  // `step`: the node's {type, config}, which name its ports.
  function portItems(step, ports, connected) {
    const items = step.type === "trigger" ? [] : [{ id: "in", group: "in" }];
    for (const port of ports) {
      const id = `out:${port.name}`;
      const isConnected = Boolean(connected && connected.has(id));
      items.push({
        id,
        group: "out",
        required: port.required,
        attrs: { text: { text: portText(port, isConnected, step) }, add: addAttrs(port, isConnected, step) },
      });
    }
    return items;
  }

  function refreshPortText(node) {
    if (!node || !node.isNode() || isNote(node)) return;
    const used = new Set(graph.getConnectedEdges(node, { outgoing: true }).map((edge) => edge.getSourcePortId()));
    const wasLoading = loading;
    loading = true;
    for (const port of node.getPorts()) {
      if (port.group !== "out") continue;
      const item = { name: port.id.replace(/^out:/, ""), required: port.required !== false };
      const text = portText(item, used.has(port.id), node);
      if (node.getPortProp(port.id, "attrs/text/text") !== text) node.setPortProp(port.id, "attrs/text/text", text);
      const add = addAttrs(item, used.has(port.id), node);
      const had = node.getPortProp(port.id, "attrs/add") || {};
      if (Object.keys(add).some((key) => had[key] !== add[key])) node.setPortProp(port.id, "attrs/add", { ...had, ...add });
    }
    loading = wasLoading;
  }

  // The words on a branch edge: yes/no, got the event/timed out, the split's share, the case.
  function edgeLabel(source, port) {
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
      case "send":
      case "webhook":
        return port === "error" ? "if it fails" : port;
      default:
        return port;
    }
  }

  function labelled(edge) {
    const port = (edge.getSourcePortId() || "out:out").replace(/^out:/, "");
    const text = edgeLabel(edge.getSourceCell(), port);
    const wasLoading = loading;
    loading = true;
    edge.setLabels(text ? [edgeLabelSpec(text)] : []);
    loading = wasLoading;
  }

  // The box behind an edge's words is sized from their length, not measured: measuring each
  // label's text forces the browser to lay out the whole canvas again, label after label.
  // (X6's own default label sizes its box by measuring: every edge gets this one instead.)
  const EDGE_LABEL = {
    markup: [{ tagName: "rect", selector: "body" }, { tagName: "text", selector: "label" }],
    attrs: {
      label: { fontSize: 12, fill: "#24324d", fontWeight: 600, textAnchor: "middle", textVerticalAnchor: "middle", pointerEvents: "none" },
      body: { fill: "#ffffff", stroke: "#b9c4d8", strokeWidth: 1, rx: 4, ry: 4, height: 18, y: -9 },
    },
    // Past the "+" below the port, which stays clear of the words.
    position: { distance: 40 },
  };
  // Steps and edges are shapes of their own: what they share is set once here, not copied
  // into each of a journey's hundreds of cells.
  X6.Graph.registerEdge("journey-edge", {
    inherit: "edge",
    defaultLabel: EDGE_LABEL,
    attrs: { line: { stroke: "#5a6b8c", strokeWidth: 2, targetMarker: { name: "block", width: 10, height: 8 } } },
    zIndex: 0,
  }, true);

  function edgeLabelSpec(text) {
    const width = Math.round(text.length * 7.3 + 12);
    return { attrs: { label: { text }, body: { width, x: -width / 2 } } };
  }

  // A step's name: the marketer's label, else what it does (the server's summary).
  function stepName(node) {
    const data = node.getData ? node.getData() : node;
    return data.label || data.summary || (byType[data.type] || {}).label || data.type;
  }

  function nodeSpec(node, position, ports, summary, connected) {
    const item = byType[node.type];
    return {
      id: node.id,
      shape: "journey-step",
      x: position.x,
      y: position.y,
      width: NODE_W,
      height: NODE_H,
      ports: { items: portItems({ ...node, summary }, ports, connected) },
      data: {
        type: node.type,
        config: node.config || {},
        label: node.label || "",
        summary: summary || (item ? item.summary : ""),
      },
    };
  }

  // ---- step cards -------------------------------------------------------------------------
  // Each step is an HTML card: its type's icon and its label (or type), what it does, and on a
  // published journey its figures; problems show as a badge. Figures, problems and the
  // simulation's light are kept in the node's data, outside the document and undo.

  X6.Shape.HTML.register({
    shape: "journey-step",
    width: NODE_W,
    height: NODE_H,
    effect: ["data"],
    html: (cell) => card(cell),
    ports: { groups: portGroups },
  });

  function element(tag, className, text) {
    const found = document.createElement(tag);
    if (className) found.className = className;
    if (text !== undefined) found.textContent = text;
    return found;
  }

  function icon(name, className) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", className);
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    use.setAttribute("href", `${icons}#${name}`);
    svg.append(use);
    return svg;
  }

  const count = (n) => Number(n || 0).toLocaleString("en");

  function card(cell) {
    const data = cell.getData() || {};
    const item = byType[data.type];
    const box = element("div", `step-card kind-${data.type}`);
    if (data.problems && data.problems.length) box.classList.add("has-problems");
    if (data.lit) box.classList.add("lit");
    const head = element("div", "step-head");
    head.append(icon(data.type, "step-icon"), element("span", "step-title", data.label || (item ? item.label : data.type)));
    if (data.problems && data.problems.length) {
      const badge = element("span", "step-problems");
      badge.title = data.problems.join("\n");
      badge.append(icon("problem", "badge-icon"), element("span", "", String(data.problems.length)));
      badge.append(element("span", "visually-hidden", data.problems.length === 1 ? " problem" : " problems"));
      head.append(badge);
    }
    const summary = element("p", "step-summary", data.summary || "");
    box.title = `${data.label ? data.label + "\n" : ""}${data.summary || ""}`;
    box.append(head, summary);
    const f = data.figures;
    if (f) {
      // Arrivals (and their share of the arrivals at the steps before) in the head; below,
      // where they are now, or for a send what became of its messages.
      box.classList.add("has-figures");
      const arrived = element("span", "step-in", `${count(f.entered)} in`);
      if (f.share !== null && f.share !== undefined) arrived.append(element("span", "share", ` · ${f.share}%`));
      head.append(arrived);
      // A send whose messages printed a name empty (a typo, a trait some customers lack)
      // says so in its head: how many, and in its title which names.
      const empty = Object.entries(f.empty || {});
      if (empty.length) {
        const words = empty.map(([name, n]) =>
          `${count(n)} message${n === 1 ? "" : "s"} had an empty {{ ${name.split(".").pop()} }} in the last 7 days`);
        const most = Math.max(...empty.map(([, n]) => n));
        const badge = element("span", "step-empty");
        badge.title = words.join("\n");
        badge.append(icon("problem", "badge-icon"), element("span", "", `${count(most)} empty`));
        badge.append(element("span", "visually-hidden", `: ${words.join("; ")}`));
        head.append(badge);
      }
      const line = element("p", "step-figures");
      if (data.type === "send") {
        const d = f.deliveries || {};
        line.append(
          element("span", `fig ${d.delivered ? "good" : ""}`, `${count(d.delivered)} delivered`),
          element("span", `fig ${d.suppressed ? "warn" : ""}`, `${count(d.suppressed)} suppressed`),
          element("span", `fig ${d.failed ? "bad" : ""}`, `${count(d.failed)} failed`),
        );
      } else if (data.type !== "exit") {
        line.append(
          element("span", "fig", `${count(f.waiting)} waiting`),
          element("span", "fig", `${count(f.completed)} went on`),
        );
        if (f.failed) line.append(element("span", "fig bad", `${count(f.failed)} failed`));
      }
      box.append(line);
    }
    return box;
  }

  // Figures, problems and light are view state: changing them is neither an edit nor undoable.
  function setViewData(node, values) {
    const wasLoading = loading;
    loading = true;
    node.setData(values, { deep: false });
    loading = wasLoading;
  }

  // Sticky notes are X6 nodes too, but not steps: they live in the draft's layout ("notes")
  // and never reach the engine.
  const isNote = (cell) => cell.isNode() && Boolean(cell.getData() && cell.getData().note);
  const steps = () => graph.getNodes().filter((node) => !isNote(node));
  function noteSpec(note) {
    return {
      id: note.id,
      shape: "rect",
      x: note.x,
      y: note.y,
      width: 180,
      height: 90,
      attrs: {
        body: { rx: 4, ry: 4, fill: "#fff5b1", stroke: "#d4b106", strokeWidth: 1 },
        label: { text: note.text || "", fontSize: 12, fill: "#3d3200", textWrap: { width: -16, height: -12, ellipsis: true } },
      },
      data: { note: true, text: note.text || "" },
    };
  }

  // Tests and assistive tools find nodes by these attributes.
  graph.on("node:added", ({ node }) => markNode(node));
  graph.on("view:mounted", ({ view }) => { if (view.cell.isNode()) markNode(view.cell); });
  function markNode(node) {
    const view = graph.findViewByCell(node);
    if (!view) return;
    if (isNote(node)) { view.container.setAttribute("data-note-id", node.id); return; }
    view.container.setAttribute("data-node-id", node.id);
    view.container.setAttribute("data-node-type", node.getData().type);
  }

  // The routes Arrange found, kept in the draft's layout so a reopened journey draws its
  // edges the same way: {"from:port": [[x, y], ...]}. Moving a step drops its edges' routes.
  function routeOf(layout, from, port) {
    const points = layout.routes && layout.routes[`${from}:${port}`];
    return Array.isArray(points)
      ? points.filter((p) => Array.isArray(p) && p.length === 2).map(([x, y]) => ({ x, y }))
      : null;
  }

  // `route`: the edge's bends from Arrange ([] for a straight one), or null when it has none.
  function edgeSpec(from, port, to, route, source) {
    const text = edgeLabel(source, port);
    return {
      ...edgeStyle(Boolean(route)),
      source: { cell: from, port: `out:${port}` },
      target: { cell: to, port: "in" },
      vertices: route || [],
      labels: text ? [edgeLabelSpec(text)] : [],
    };
  }

  function draw(answer) {
    loading = true;
    const doc = answer.document;
    documentBase = doc;
    const layout = doc.layout || {};
    const summaries = answer.summaries || {};
    routing = (doc.nodes || []).length > 80
      ? { name: "orth", args: { padding: 16 } }
      : { name: "manhattan", args: { padding: 16 } };
    // A document without a layout (or without the place of some step), or one drawn for other
    // step sizes, is arranged on open; its edges then take the routes Arrange gives them.
    const arrange = (doc.nodes || []).some((node) => !layout[node.id]) || overlapping(doc.nodes || [], layout);
    const connected = new Map();
    for (const edge of doc.edges || []) {
      if (!connected.has(edge.from)) connected.set(edge.from, new Set());
      connected.get(edge.from).add(`out:${edge.port || "out"}`);
    }
    // One batch: the views are drawn once, not after every cell.
    const cells = (doc.nodes || []).map((node, index) => graph.createNode(nodeSpec(
      node,
      layout[node.id] || { x: 80 + (index % 4) * 300, y: 60 + Math.floor(index / 4) * 180 },
      answer.ports[node.id] || [],
      summaries[node.id],
      connected.get(node.id),
    )));
    const byId = new Map(cells.map((cell) => [cell.id, cell]));
    for (const note of Array.isArray(layout.notes) ? layout.notes : []) {
      if (note && typeof note.id === "string" && !byId.has(note.id)) cells.push(graph.createNode(noteSpec(note)));
    }
    for (const edge of doc.edges || []) {
      if (!byId.has(edge.from) || !byId.has(edge.to)) continue;
      const port = edge.port || "out";
      const route = arrange ? [] : routeOf(layout, edge.from, port);
      cells.push(graph.createEdge(edgeSpec(edge.from, port, edge.to, route, byId.get(edge.from))));
    }
    // Set the view first, so that only the steps in it get drawn (a journey to arrange is
    // viewed once arranged).
    const fitAfter = !arrange && !openView(contentBox(cells.filter((cell) => cell.isNode() && !isNote(cell))), cells);
    graph.resetCells(cells);
    loading = false;
    // The arrangement is saved with the marketer's first edit.
    if (arrange) {
      autoLayout(false);
      openView();
    } else if (fitAfter) {
      fit();
    }
    showProblems(answer.problems);
  }

  function overlapping(nodes, layout) {
    // Sorted by x, a step can only overlap those that start less than a step's width after it.
    const boxes = nodes.map((node) => layout[node.id]).filter(Boolean).sort((a, b) => a.x - b.x);
    for (let i = 0; i < boxes.length; i += 1) {
      for (let j = i + 1; j < boxes.length && boxes[j].x < boxes[i].x + NODE_W; j += 1) {
        if (Math.abs(boxes[j].y - boxes[i].y) < NODE_H) return true;
      }
    }
    return false;
  }

  // ---- the document -----------------------------------------------------------------------

  function currentDocument() {
    const nodes = steps();
    const layout = {};
    for (const key of Object.keys(documentBase.layout || {})) {
      if (!graph.getCellById(key)) layout[key] = documentBase.layout[key]; // notes and the like
    }
    for (const node of nodes) {
      const p = node.getPosition();
      layout[node.id] = { x: Math.round(p.x), y: Math.round(p.y) };
    }
    const notes = graph.getNodes().filter(isNote).map((note) => {
      const p = note.getPosition();
      return { id: note.id, x: Math.round(p.x), y: Math.round(p.y), text: note.getData().text };
    });
    if (notes.length) layout.notes = notes;
    else delete layout.notes;
    const edges = [];
    const routes = {};
    for (const edge of graph.getEdges()) {
      const port = (edge.getSourcePortId() || "out:out").replace(/^out:/, "");
      const to = edge.getTargetCellId();
      if (!to) continue;
      const item = { from: edge.getSourceCellId(), to };
      if (port !== "out") item.port = port;
      edges.push(item);
      // An edge on its route from Arrange goes straight through its bends (maybe none).
      if ((edge.getRouter() || {}).name === "normal") {
        routes[`${item.from}:${port}`] = edge.getVertices().map((p) => [Math.round(p.x), Math.round(p.y)]);
      }
    }
    if (Object.keys(routes).length) layout.routes = routes;
    else delete layout.routes;
    return {
      ...documentBase,
      nodes: nodes.map((node) => {
        const data = node.getData();
        return { id: node.id, type: data.type, ...(data.label ? { label: data.label } : {}), config: data.config };
      }),
      edges,
      layout,
    };
  }

  function scheduleSave() {
    if (loading || !editable || conflicted) return;
    setStatus("Unsaved changes…");
    clearTimeout(saveTimer);
    saveTimer = setTimeout(save, 500);
  }

  async function save() {
    saveTimer = null; // the timer that called this has fired, or whoever called cleared it
    if (saving) { saveAgain = true; return; }
    saving = true;
    const sent = currentDocument();
    try {
      const response = await fetch(draftUrl, {
        method: "PUT",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ revision, document: sent }),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        revision = answer.revision;
        documentBase = answer.document;
        updatePorts(answer.ports);
        showSummaries(answer.summaries);
        showProblems(answer.problems);
        setStatus(`Saved · revision ${revision}`);
      } else if (response.status === 412) {
        conflict(sent, answer);
      } else {
        setStatus(answer.error || `Not saved (${response.status}); your change is still here.`, true);
        if (answer.problems) showProblems(answer.problems);
      }
    } catch (error) {
      setStatus("Not saved: the server did not answer. Retrying in 5 s…", true);
      saveTimer = setTimeout(save, 5000);
    } finally {
      saving = false;
      if (saveAgain) {
        saveAgain = false;
        if (waiting.length) save(); else scheduleSave();
      } else if (!saveTimer) {
        for (const resolve of waiting.splice(0)) resolve();
      }
    }
  }

  // Resolves once every change made so far is on the server (or could not be saved): the
  // side panel and the simulation ask the server about the draft only then.
  const waiting = [];
  function whenSaved() {
    if (!saving && !saveTimer) return Promise.resolve();
    if (saveTimer && !saving) { clearTimeout(saveTimer); saveTimer = null; save(); }
    return new Promise((resolve) => waiting.push(resolve));
  }

  function conflict(mine, answer) {
    conflicted = true;
    const box = document.getElementById("conflict");
    const link = box.querySelector("a[download]");
    link.href = URL.createObjectURL(new Blob([JSON.stringify(mine, null, 2)], { type: "application/json" }));
    box.querySelector("[data-their-revision]").textContent = answer.revision;
    box.hidden = false;
    setStatus("Not saved: someone else changed this draft.", true);
  }

  function setStatus(text, bad) {
    statusLine.textContent = text;
    statusLine.classList.toggle("bad", Boolean(bad));
  }

  // The server's words for each step, and the words on the edges leaving it, which may
  // follow from its config (a split's shares, an awaited event).
  function showSummaries(summaries) {
    for (const node of steps()) {
      const summary = (summaries || {})[node.id];
      if (summary === undefined || node.getData().summary === summary) continue;
      setViewData(node, { summary });
      for (const edge of graph.getConnectedEdges(node, { outgoing: true })) labelled(edge);
      refreshPortText(node);
    }
  }

  function updatePorts(ports) {
    // Keep the ports that stay (and their edges); add the new ones, drop the gone ones. A
    // step the answer does not know was added since its document was sent (a form saved on
    // the way to a new step): it keeps its ports until the canvas's own save answers.
    loading = true;
    for (const node of steps()) {
      if (!(node.id in ports)) continue;
      const used = new Set(graph.getConnectedEdges(node, { outgoing: true }).map((edge) => edge.getSourcePortId()));
      const wanted = portItems(node.getData(), ports[node.id] || [], used);
      const wantedIds = new Set(wanted.map((p) => p.id));
      const have = new Set(node.getPorts().map((p) => p.id));
      for (const id of have) if (!wantedIds.has(id)) node.removePort(id);
      const missing = wanted.filter((p) => !have.has(p.id));
      if (missing.length) node.addPorts(missing);
    }
    loading = false;
  }

  // ---- problems ---------------------------------------------------------------------------

  const marked = new Set();
  function showProblems(problems) {
    // Marking problems is not an edit: setViewData keeps it out of undo and autosave.
    const byNode = new Map();
    for (const problem of problems) {
      const node = problem.node && graph.getCellById(problem.node);
      if (!node || !node.isNode()) continue;
      if (!byNode.has(node.id)) byNode.set(node.id, []);
      byNode.get(node.id).push(problem.message);
    }
    for (const id of new Set([...marked, ...byNode.keys()])) {
      const node = graph.getCellById(id);
      const messages = byNode.get(id) || [];
      const had = (node && node.getData().problems) || [];
      if (node && had.join("\n") !== messages.join("\n")) setViewData(node, { problems: messages });
    }
    marked.clear();
    for (const id of byNode.keys()) marked.add(id);
    problemList.replaceChildren();
    document.getElementById("problem-count").textContent = problems.length
      ? `${problems.length} problem${problems.length === 1 ? "" : "s"}`
      : "No problems";
    // A banner about problems to fix leaves once they are fixed.
    if (!problems.length) for (const banner of document.querySelectorAll("[data-until-fixed]")) banner.remove();
    const badge = document.getElementById("problem-badge");
    if (badge) {
      badge.hidden = problems.length === 0;
      badge.textContent = `${problems.length} problem${problems.length === 1 ? "" : "s"}`;
    }
    for (const problem of problems) {
      const node = problem.node && graph.getCellById(problem.node);
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      const where = node && node.isNode() ? stepName(node) : problem.node;
      button.textContent = where ? `${where}: ${problem.message}` : problem.message;
      button.addEventListener("click", () => focusNode(problem.node));
      li.append(button);
      problemList.append(li);
    }
    forgetFixed(problems);
    const publish = document.getElementById("publish-state");
    if (publish) publish.textContent = problems.length ? "Fix the problems to publish." : "Ready to publish.";
    if (publishLink && !root.dataset.version) {
      publishLink.setAttribute("aria-disabled", problems.length ? "true" : "false");
      publishLink.title = problems.length
        ? `Fix the ${problems.length === 1 ? "problem" : `${problems.length} problems`} listed beside the canvas to publish`
        : "Review the changes, then publish";
    }
  }
  // Publishing waits until the draft has no problems: the button says so and leads to them.
  if (publishLink) {
    publishLink.addEventListener("click", (event) => {
      if (publishLink.getAttribute("aria-disabled") !== "true") return;
      event.preventDefault();
      showProblemList();
    });
  }

  // The open step's form lists its problems as they were when it loaded; those fixed since
  // on the canvas (an output connected, say) leave the list.
  function forgetFixed(problems) {
    const body = panel.querySelector("[data-panel-node]");
    const list = body && body.querySelector("ul.problems");
    if (!list) return;
    const still = new Set(problems.filter((p) => p.node === body.dataset.panelNode).map((p) => p.message));
    for (const item of list.querySelectorAll("li")) {
      if (!still.has(item.textContent.trim())) item.remove();
    }
    if (!list.children.length) list.remove();
  }

  function focusNode(id) {
    const node = id && graph.getCellById(id);
    if (!node) return;
    selection.clean();
    selection.select(node);
    graph.centerCell(node);
    drawView();
  }

  // ---- editing ----------------------------------------------------------------------------

  // The middle of the part of the canvas that the toolbar and the palette leave free, in the
  // journey's coordinates: where a step or note added without a place goes.
  function freeCenter() {
    const box = canvasBox.getBoundingClientRect();
    const pad = fitPadding();
    return graph.clientToLocal(
      box.left + pad.left + (box.width - pad.left - pad.right) / 2,
      box.top + pad.top + (box.height - pad.top - pad.bottom) / 2,
    );
  }

  function newId(type) {
    let n = 1;
    while (graph.getCellById(`${type}_${n}`)) n += 1;
    return `${type}_${n}`;
  }

  // Where a new step goes: where it was dropped; else below the selected step (its next step
  // is the likely one to add); else in the middle of the view. Then to the first place beside
  // or below that no step takes, so steps never land on each other.
  function placeFor(point) {
    if (point) return { x: point.x - NODE_W / 2, y: point.y - NODE_H / 2 };
    const chosen = selection.getSelectedCells().filter((cell) => cell.isNode() && !isNote(cell));
    if (chosen.length === 1) {
      const p = chosen[0].getPosition();
      return { x: p.x, y: p.y + NODE_H + RANK_GAP };
    }
    const middle = freeCenter();
    return { x: middle.x - NODE_W / 2, y: middle.y - NODE_H / 2 };
  }

  function freeSpot(wanted) {
    const taken = steps().map((node) => node.getPosition());
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

  // A step added out of sight (below the view, under the step list) is brought into it, so
  // that its ports can be reached at once.
  function bringIntoView(node) {
    const box = canvasBox.getBoundingClientRect();
    const pad = fitPadding();
    const view = graph.findViewByCell(node);
    const at = view ? view.container.getBoundingClientRect() : null;
    const inside = at && at.left >= box.left + pad.left - 8 && at.right <= box.right - 8 &&
      at.top >= box.top + pad.top - 24 && at.bottom <= box.bottom - 8;
    if (!inside) {
      graph.centerCell(node);
      drawView();
    }
  }

  // `onEdge`: an edge the new step goes into (see splice); adding and splicing are one change.
  function addNode(type, point, onEdge) {
    const item = byType[type];
    const at = freeSpot(placeFor(point));
    let node = null;
    graph.batchUpdate("add-step", () => {
      node = graph.addNode(
        nodeSpec({ id: newId(type), type, config: structuredClone(item.config) }, at, item.ports),
      );
      if (onEdge) splice(onEdge, node);
    });
    selection.clean();
    selection.select(node);
    bringIntoView(node);
    return node;
  }

  // ---- dropping a step on an edge ---------------------------------------------------------
  // A new step from the list, or a step not yet connected, dropped on the edge A -> B goes in
  // between: A -> the step (its input), the step (its first output) -> B. While dragging, the
  // edge it would go into is highlighted.

  const canSplice = (type, ports) => type !== "trigger" && ports.length > 0;
  function edgeAt(point) {
    const reach = 14 / graph.transform.getScale().sx;
    let best = null;
    let bestDistance = reach;
    for (const edge of graph.getEdges()) {
      const view = graph.findViewByCell(edge);
      if (!view || !edge.getTargetCellId() || !view.path) continue;
      const closest = view.getClosestPoint(point);
      const distance = closest ? closest.distance(point) : Infinity;
      if (distance < bestDistance) { best = edge; bestDistance = distance; }
    }
    return best;
  }
  let dropEdge = null;
  function markDropEdge(edge) {
    if (edge === dropEdge) return;
    for (const old of [dropEdge, edge]) {
      const view = old && graph.findViewByCell(old);
      if (view) view.container.classList.toggle("drop-target", old === edge);
    }
    dropEdge = edge;
  }
  // Replaces `edge` (A -> B) by A -> node -> B.
  function splice(edge, node) {
    const from = edge.getSourceCell();
    const port = (edge.getSourcePortId() || "out:out").replace(/^out:/, "");
    const to = edge.getTargetCellId();
    const out = node.getPorts().find((p) => p.group === "out");
    edge.remove();
    graph.addEdge(edgeSpec(from.id, port, node.id, null, from));
    if (out) graph.addEdge(edgeSpec(node.id, out.id.replace(/^out:/, ""), to, null, node));
    refreshPortText(from);
    refreshPortText(node);
  }

  let dragType = null;
  for (const button of document.querySelectorAll("#palette [data-node-type]")) {
    button.addEventListener("click", () => addNode(button.dataset.nodeType));
    button.addEventListener("dragstart", (event) => {
      dragType = button.dataset.nodeType;
      event.dataTransfer.setData("application/x-throughline-node", button.dataset.nodeType);
      event.dataTransfer.effectAllowed = "copy";
    });
    button.addEventListener("dragend", () => { dragType = null; markDropEdge(null); });
  }
  const canvasBox = document.getElementById("canvas");
  canvasBox.addEventListener("dragover", (event) => {
    if (!editable || !event.dataTransfer.types.includes("application/x-throughline-node")) return;
    event.preventDefault();
    const item = dragType && byType[dragType];
    const point = graph.clientToLocal(event.clientX, event.clientY);
    markDropEdge(item && canSplice(dragType, item.ports) ? edgeAt(point) : null);
  });
  canvasBox.addEventListener("dragleave", (event) => {
    if (!canvasBox.contains(event.relatedTarget)) markDropEdge(null);
  });
  canvasBox.addEventListener("drop", (event) => {
    const type = event.dataTransfer.getData("application/x-throughline-node");
    const onEdge = dropEdge;
    markDropEdge(null);
    if (!type || !editable) return;
    event.preventDefault();
    const point = graph.clientToLocal(event.clientX, event.clientY);
    addNode(type, point, onEdge && canSplice(type, byType[type].ports) ? onEdge : null);
  });

  // A step on the canvas with no edge yet can be dragged onto an edge the same way; the move
  // and the splice are one change for undo.
  let dragging = null;
  const loose = (node) => editable && !isNote(node) && node.hasPort("in") &&
    node.getPorts().some((p) => p.group === "out") && graph.getConnectedEdges(node).length === 0;
  graph.on("node:mousedown", ({ node, e }) => {
    if (!loose(node) || (e.target.closest && e.target.closest("[magnet]"))) return;
    dragging = node;
    graph.startBatch("drop-on-edge");
  });
  graph.on("node:moving", ({ node, x, y }) => {
    if (node === dragging) markDropEdge(edgeAt({ x, y }));
  });
  graph.on("node:moved", ({ node }) => {
    if (node !== dragging || !dropEdge) return;
    const edge = dropEdge;
    markDropEdge(null);
    splice(edge, node);
  });
  // The canvas hears the button go up after this; node:moved, if the step moved, comes then.
  window.addEventListener("mouseup", () => {
    if (!dragging) return;
    setTimeout(() => {
      dragging = null;
      markDropEdge(null);
      graph.stopBatch("drop-on-edge");
    });
  }, true);

  // One edge per output port: a new connection from a port replaces the old one.
  graph.on("edge:connected", ({ edge, isNew }) => {
    const port = edge.getSourcePortId();
    for (const other of graph.getConnectedEdges(edge.getSourceCell(), { outgoing: true })) {
      if (other !== edge && other.getSourcePortId() === port) other.remove();
    }
    labelled(edge);
    refreshPortText(edge.getSourceCell());
    if (isNew) scheduleSave();
  });
  graph.on("cell:added", ({ cell }) => {
    if (cell.isEdge()) {
      // An edge put back by undo or redo: its words and its port's name follow.
      if (!loading && cell.getTargetCellId()) {
        labelled(cell);
        refreshPortText(graph.getCellById(cell.getSourceCellId()));
      }
      return;
    }
    // A pasted step comes without the figures, problems or light of the one copied, and
    // names its outputs, none of which is connected yet.
    if (!loading && !isNote(cell)) {
      setViewData(cell, { figures: null, problems: [], lit: false });
      refreshPortText(cell);
    }
    scheduleSave();
  });
  graph.on("cell:removed", ({ cell }) => {
    if (cell.isEdge()) refreshPortText(graph.getCellById(cell.getSourceCellId()));
    scheduleSave();
  });
  // Moving a step by itself or with the selection it belongs to (the latter fires no node:moved).
  // Its edges leave the routes Arrange gave them and find their own way around the steps.
  graph.on("node:change:position", ({ node }) => {
    if (!loading && !arranging && !replaying && !isNote(node)) {
      for (const edge of graph.getConnectedEdges(node)) {
        if ((edge.getRouter() || {}).name === "normal") {
          edge.setVertices([]);
          edge.setRouter(routing);
        }
      }
    }
    scheduleSave();
  });
  graph.on("edge:change:target", ({ edge }) => { if (edge.getTargetCellId()) scheduleSave(); });
  graph.on("history:change", updateHistoryButtons);

  function removeSelection() {
    if (!editable) return false;
    const cells = selection.getSelectedCells();
    if (cells.length) graph.removeCells(cells);
    return false;
  }
  // While undo or redo puts cells back, the steps' moves are theirs, not the marketer's: the
  // routes they bring back must stay.
  let replaying = false;
  function replay(step) {
    replaying = true;
    try { step(); } finally { replaying = false; }
    for (const edge of graph.getEdges()) labelled(edge);
    for (const node of steps()) refreshPortText(node);
  }
  function undo() { if (history.canUndo()) replay(() => history.undo()); return false; }
  function redo() { if (history.canRedo()) replay(() => history.redo()); return false; }
  function copy() { const cells = selection.getSelectedCells(); if (cells.length) clipboard.copy(cells); return false; }
  function paste() {
    if (!editable || clipboard.isEmpty()) return false;
    const pasted = clipboard.paste({ offset: 32 });
    selection.clean();
    selection.select(pasted);
    return false;
  }
  function zoom(delta) { graph.zoom(delta, { minScale: 0.2, maxScale: 2 }); drawView(); return false; }
  // The toolbar floats over the canvas and wraps to two lines on a narrow stage: the journey
  // is fitted below it, whatever its height.
  // The palette floats on its left and the map in a corner: the journey is fitted beside them,
  // the map's side (right or below) being whichever leaves the steps larger.
  const toolbar = document.querySelector(".stage .toolbar");
  const palette = document.getElementById("palette");
  const mapBox = document.getElementById("minimap");
  function fitPadding(area) {
    const box = canvasBox.getBoundingClientRect();
    const below = toolbar ? toolbar.getBoundingClientRect().bottom - box.top : 0;
    const pad = { top: Math.max(64, Math.round(below + 20)), right: 32, bottom: 24, left: 32 };
    if (palette && palette.offsetParent) pad.left = Math.max(pad.left, Math.round(palette.getBoundingClientRect().right - box.left + 24));
    if (mapBox && !mapBox.hidden && area) {
      const map = mapBox.getBoundingClientRect();
      const scaleWith = (right, bottom) => Math.min(
        (box.width - pad.left - right) / Math.max(area.width, 1),
        (box.height - pad.top - bottom) / Math.max(area.height, 1),
      );
      const aside = Math.round(box.right - map.left + 16);
      const under = Math.round(box.bottom - map.top + 16);
      if (scaleWith(aside, pad.bottom) >= scaleWith(pad.right, under)) pad.right = aside;
      else pad.bottom = under;
    }
    return pad;
  }
  // X6's zoomToFit centres the journey in the whole canvas, under the toolbar: this centres
  // it in the part left free by the padding.
  function fit() {
    const area = graph.getContentArea();
    if (area.width === 0 && area.height === 0) return false;
    const box = canvasBox.getBoundingClientRect();
    const pad = fitPadding(area);
    const free = { width: box.width - pad.left - pad.right, height: box.height - pad.top - pad.bottom };
    const scale = Math.max(0.01, Math.min(1, free.width / Math.max(area.width, 1), free.height / Math.max(area.height, 1)));
    graph.zoomTo(scale);
    graph.translate(
      pad.left + (free.width - area.width * scale) / 2 - area.x * scale,
      pad.top + Math.max(0, (free.height - area.height * scale) / 2) - area.y * scale,
    );
    drawView();
    return false;
  }

  // X6 redraws the area in view at most every 200 ms while panning; after a move of ours the
  // steps now in view are drawn at once.
  function drawView() {
    const area = graph.getGraphArea();
    area.inflate(160, 160);
    graph.renderer.setRenderArea(area);
  }

  // Opening a journey fits it to the screen, unless that would make its steps too small to read:
  // then it opens at a readable size on its first steps (Fit still shows the whole journey).
  const READABLE = 0.7;
  function contentBox(nodes) {
    if (!nodes.length) return null;
    let box = nodes[0].getBBox();
    for (const node of nodes.slice(1)) box = box.union(node.getBBox());
    return box;
  }

  // Before the cells are in the graph (`cells` given), a journey that fits readably is left for
  // fit() to place afterwards: the answer is false then.
  let openedAt = "";
  function openView(content, cells) {
    const nodes = cells ? cells.filter((cell) => cell.isNode() && !isNote(cell)) : steps();
    const box = canvasBox.getBoundingClientRect();
    openedAt = `${box.width}x${box.height}`;
    if (nodes.length === 0) return true;
    const area = content || graph.getContentArea();
    const padding = fitPadding(area);
    const across = (box.width - padding.left - padding.right) / Math.max(area.width, 1);
    const down = (box.height - padding.top - padding.bottom) / Math.max(area.height, 1);
    if (Math.min(across, down) >= READABLE) {
      if (cells) return false; // before the cells are in the graph, Fit has nothing to measure
      fit();
      return true;
    }
    if (mapBox && mapChosen === null && mapBox.hidden) {
      mapBox.hidden = false; // the journey opens at its start, the map in the far corner
      pressed("minimap", true);
    }
    graph.zoomTo(READABLE);
    // Where the journey starts (its trigger, else its top step) at the top of the free part of
    // the canvas, below the toolbar; as far left as the journey's own left edge allows.
    const trigger = nodes.find((node) => node.getData().type === "trigger")
      || nodes.reduce((top, node) => (node.getPosition().y < top.getPosition().y ? node : top));
    const at = trigger.getPosition();
    const sx = READABLE;
    const freeWidth = box.width - padding.left - padding.right;
    const left = Math.max(area.x, at.x + NODE_W / 2 - freeWidth / (2 * sx));
    graph.translate(padding.left - left * sx, padding.top - at.y * sx);
    drawView();
    return true;
  }

  // Arrange: dagre lays the journey out top to bottom, room left for the edges' words, and
  // the branches of a step side by side in the order of its ports (yes before no, the event
  // before the timeout), so they do not cross. Each edge keeps dagre's route, which passes
  // between the steps, never under one.
  let arranging = false;
  function autoLayout(record = true) {
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
        const vertices = found && found.points ? elbows(edge, found.points.slice(1, -1), rowTops) : [];
        edge.setVertices(vertices);
        edge.setRouter({ name: "normal" });
      }
      arranging = false;
    };
    if (record) {
      graph.batchUpdate("layout", move);
      scheduleSave();
    } else {
      loading = true;
      move();
      loading = false;
      return false; // opening the journey sets the view
    }
    fit();
    return false;
  }

  // An orthogonal route from the edge's port through dagre's bends to the target's top. Runs
  // across are made only in the gaps between rows of steps; a run down passes a row through
  // the slot dagre kept free for it. So no segment crosses a step.
  function elbows(edge, bends, rowTops) {
    const source = edge.getSourceCell();
    const target = edge.getTargetCell();
    const port = source.getPortsPosition("out")[edge.getSourcePortId()];
    const at = source.getPosition();
    const start = { x: at.x + (port ? port.position.x : NODE_W / 2), y: at.y + NODE_H };
    const end = { x: target.getPosition().x + NODE_W / 2, y: target.getPosition().y };
    const rowAt = (y) => rowTops.find((top) => y >= top - 1 && y <= top + NODE_H + 1);
    const vertices = [];
    let x = Math.round(start.x);
    const across = (y, to) => {
      if (Math.abs(to - x) < 1) return;
      vertices.push({ x, y: Math.round(y) }, { x: Math.round(to), y: Math.round(y) });
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
  // left out.
  function portConstraints(layered, order) {
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

  keyboard.bindKey(["delete", "backspace"], removeSelection);
  keyboard.bindKey(["ctrl+z", "meta+z"], undo);
  keyboard.bindKey(["ctrl+shift+z", "meta+shift+z", "ctrl+y"], redo);
  keyboard.bindKey(["ctrl+c", "meta+c"], copy);
  keyboard.bindKey(["ctrl+v", "meta+v"], paste);
  keyboard.bindKey(["ctrl+a", "meta+a"], () => { selection.select(graph.getNodes()); return false; });
  keyboard.bindKey(["=", "+"], () => zoom(0.1));
  keyboard.bindKey(["-"], () => zoom(-0.1));
  keyboard.bindKey(["shift+1"], fit);
  keyboard.bindKey(["shift+l"], () => autoLayout());
  keyboard.bindKey(["c"], () => { openConnect(); return false; });

  // ---- moving between steps with the keyboard --------------------------------------------
  // The arrow keys go to the nearest step that way (from the selected step, else from the
  // trigger); Enter opens the selected step's form with its first field focused.

  const DIRECTIONS = { up: [0, -1], down: [0, 1], left: [-1, 0], right: [1, 0] };
  function goTo(direction) {
    const all = steps();
    if (!all.length) return false;
    const chosen = selection.getSelectedCells().filter((cell) => cell.isNode() && !isNote(cell));
    const from = chosen[0];
    if (!from) {
      const start = all.find((node) => node.getData().type === "trigger") || all[0];
      selectStep(start);
      return false;
    }
    const [dx, dy] = DIRECTIONS[direction];
    const here = from.getBBox().getCenter();
    let best = null;
    let bestScore = Infinity;
    for (const node of all) {
      if (node === from) continue;
      const there = node.getBBox().getCenter();
      const along = (there.x - here.x) * dx + (there.y - here.y) * dy;
      const across = Math.abs((there.x - here.x) * dy) + Math.abs((there.y - here.y) * dx);
      if (along <= 1) continue; // not that way
      const score = along + 2 * across;
      if (score < bestScore) { best = node; bestScore = score; }
    }
    if (best) selectStep(best);
    return false;
  }
  function selectStep(node) {
    selection.clean();
    selection.select(node);
    bringIntoView(node);
    setStatus(`${stepName(node)} selected: Enter opens it, arrows go to the next step.`);
  }
  function openSelected() {
    const chosen = selection.getSelectedCells().filter((cell) => cell.isNode() && !isNote(cell));
    if (chosen.length !== 1) return true; // let Enter do what it does elsewhere
    showPanel(true);
    const focusForm = () => {
      const field = panel.querySelector("form input:not([type=hidden]), form select, form textarea");
      if (field) field.focus();
    };
    const shown = () => panel.querySelector(`[data-panel-node="${CSS.escape(chosen[0].id)}"]`);
    if (shown()) {
      focusForm();
    } else {
      // Its form is on its way: focus it once it is in the panel (other requests settle too).
      const settled = () => {
        if (!shown()) return;
        document.body.removeEventListener("htmx:afterSettle", settled);
        focusForm();
      };
      document.body.addEventListener("htmx:afterSettle", settled);
    }
    return false;
  }
  for (const direction of Object.keys(DIRECTIONS)) keyboard.bindKey([direction], () => goTo(direction));
  keyboard.bindKey(["enter"], openSelected);

  // ---- connecting with the keyboard -------------------------------------------------------
  // With one step selected, C lists its free outputs and the steps it can lead to; the edge
  // made is the one a drag from the port would make.

  const connectDialog = document.getElementById("connect-dialog");
  function freePorts(node) {
    const used = new Set(graph.getConnectedEdges(node, { outgoing: true }).map((edge) => edge.getSourcePortId()));
    return node.getPorts().filter((port) => port.group === "out" && !used.has(port.id));
  }
  function openConnect() {
    if (!editable || !connectDialog) return;
    const nodes = selection.getSelectedCells().filter((cell) => cell.isNode());
    if (nodes.length !== 1 || isNote(nodes[0])) { setStatus("Select one step to connect it.", true); return; }
    const node = nodes[0];
    const ports = freePorts(node);
    const portSelect = document.getElementById("connect-port");
    const targetSelect = document.getElementById("connect-target");
    portSelect.replaceChildren(...ports.map((port) => {
      const name = port.id.replace(/^out:/, "");
      const words = edgeLabel(node, name);
      return new Option(words && words !== name ? `${name} (${words})` : name, port.id);
    }));
    const targets = steps().filter((other) => other !== node && other.hasPort("in"));
    targetSelect.replaceChildren(...targets.map((other) => new Option(stepName(other), other.id)));
    connectDialog.querySelector("[data-connect-from]").textContent = stepName(node);
    const none = ports.length === 0 || targets.length === 0;
    connectDialog.querySelector("[data-connect-none]").hidden = ports.length !== 0;
    connectDialog.querySelector("[data-connect-ok]").disabled = none;
    connectDialog.dataset.node = node.id;
    connectDialog.showModal();
    (none ? connectDialog.querySelector("[data-connect-cancel]") : portSelect).focus();
  }
  function connectChosen() {
    const node = graph.getCellById(connectDialog.dataset.node);
    const port = document.getElementById("connect-port").value;
    const to = document.getElementById("connect-target").value;
    if (!node || !port || !to) return;
    for (const other of graph.getConnectedEdges(node, { outgoing: true })) {
      if (other.getSourcePortId() === port) other.remove();
    }
    const edge = graph.addEdge(edgeSpec(node.id, port.replace(/^out:/, ""), to, null, node));
    refreshPortText(edge.getSourceCell());
    scheduleSave();
  }
  if (connectDialog) {
    connectDialog.querySelector("form").addEventListener("submit", (event) => {
      if (event.submitter && event.submitter.value !== "connect") return;
      connectChosen();
    });
    connectDialog.addEventListener("keydown", (event) => {
      // Enter on a list chooses, as on the Connect button.
      if (event.key === "Enter" && event.target.tagName === "SELECT") {
        event.preventDefault();
        if (!connectDialog.querySelector("[data-connect-ok]").disabled) { connectChosen(); connectDialog.close(); }
      }
    });
    connectDialog.querySelector("[data-connect-cancel]").addEventListener("click", () => connectDialog.close());
    connectDialog.addEventListener("close", () => canvasBox.focus());
  }

  // ---- the "+" below an output ---------------------------------------------------------
  // It lists the step types; the one chosen goes below the output, clear of other steps, and
  // is connected from it. Below a connected output it goes in between: the steps after it
  // move down a row to make room. Step, edges and moves are one change: one undo.

  const addDialog = document.getElementById("add-dialog");
  let addFrom = null;
  function portWords(node, port) {
    const name = port.replace(/^out:/, "");
    return name === "out" ? "" : ` (${edgeLabel(node, name) || name})`;
  }
  const edgeFrom = (node, port) =>
    graph.getConnectedEdges(node, { outgoing: true }).find((edge) => edge.getSourcePortId() === port);
  function openAdd(node, port) {
    if (!editable || !addDialog) return;
    addFrom = { node: node.id, port };
    const data = node.getData();
    addDialog.querySelector("[data-add-from]").textContent =
      `${data.label || (byType[data.type] || {}).label || data.type}${portWords(node, port)}`;
    addDialog.querySelector("[data-add-summary]").textContent = data.label ? data.summary || "" : stepName(node);
    const next = edgeFrom(node, port);
    const target = next && next.getTargetCell();
    addDialog.querySelector("[data-add-where]").textContent = target
      ? `The new step goes in between, before ${stepName(target)}.`
      : "The new step goes below it, connected.";
    addDialog.showModal();
    addDialog.querySelector("[data-add-type]").focus();
  }
  // The steps reachable from `start` (itself included) but not `source`.
  function after(start, source) {
    const found = new Set();
    const todo = [start];
    while (todo.length) {
      const node = todo.pop();
      if (!node || node === source || found.has(node)) continue;
      found.add(node);
      for (const edge of graph.getConnectedEdges(node, { outgoing: true })) todo.push(edge.getTargetCell());
    }
    return [...found];
  }
  function addAfter(node, port, type) {
    const item = byType[type];
    const at = node.getPosition();
    const offset = node.getPortsPosition("out")[port];
    const x = at.x + (offset ? offset.position.x : NODE_W / 2) - NODE_W / 2;
    const row = at.y + NODE_H + RANK_GAP;
    const next = edgeFrom(node, port);
    const target = next && next.getTargetCell();
    const between = Boolean(target && target.isNode() && canSplice(type, item.ports));
    let added = null;
    graph.batchUpdate("add-after", () => {
      if (between) {
        const below = after(target, node);
        const room = NODE_H + RANK_GAP;
        if (below.some((step) => step.getPosition().y < row + room)) {
          for (const step of below) step.translate(0, room);
        }
      }
      const spot = freeSpot({ x, y: row });
      added = graph.addNode(nodeSpec({ id: newId(type), type, config: structuredClone(item.config) }, spot, item.ports));
      if (between) {
        splice(next, added);
      } else {
        if (next) next.remove();
        graph.addEdge(edgeSpec(node.id, port.replace(/^out:/, ""), added.id, null, node));
      }
    });
    refreshPortText(node);
    selection.clean();
    selection.select(added);
    bringIntoView(added);
    scheduleSave();
    return added;
  }
  // The "+" is the port's, inside a step: a press on it is neither a drag of the step nor
  // the start of an edge.
  const portAdd = (target) => (target && target.closest ? target.closest(".port-add") : null);
  function addFromPort(target) {
    const holder = target.closest(".x6-port");
    const port = holder && holder.querySelector("[port]");
    const view = graph.findView(target);
    if (!view || !view.cell.isNode() || !port) return;
    openAdd(view.cell, port.getAttribute("port"));
  }
  canvasBox.addEventListener("mousedown", (event) => { if (portAdd(event.target)) event.stopPropagation(); }, true);
  canvasBox.addEventListener("click", (event) => {
    const add = portAdd(event.target);
    if (add) { event.stopPropagation(); addFromPort(add); }
  }, true);
  canvasBox.addEventListener("keydown", (event) => {
    const add = portAdd(event.target);
    if (!add || (event.key !== "Enter" && event.key !== " ")) return;
    event.preventDefault();
    event.stopPropagation();
    addFromPort(add);
  });
  if (addDialog) {
    for (const button of addDialog.querySelectorAll("[data-add-type]")) {
      button.addEventListener("click", () => {
        const node = addFrom && graph.getCellById(addFrom.node);
        addDialog.close();
        if (node) addAfter(node, addFrom.port, button.dataset.addType);
      });
    }
    addDialog.querySelector("[data-add-cancel]").addEventListener("click", () => addDialog.close());
    addDialog.addEventListener("close", () => canvasBox.focus());
  }

  // A note's text is typed in the side panel; the note shows it as it is typed.
  function addNote() {
    if (!editable) return false;
    const at = freeCenter();
    let n = 1;
    while (graph.getCellById(`note_${n}`)) n += 1;
    const note = graph.addNode(noteSpec({ id: `note_${n}`, x: Math.round(at.x - 90), y: Math.round(at.y - 45), text: "" }));
    selection.clean();
    selection.select(note);
    return false;
  }
  function showNotePanel(note) {
    const heading = document.createElement("h2");
    heading.textContent = "Note";
    const hint = document.createElement("p");
    hint.className = "muted";
    hint.textContent = "For the people editing this journey; customers never see it. Delete removes it.";
    const labelEl = document.createElement("label");
    labelEl.htmlFor = "note-text";
    labelEl.textContent = "Text";
    const text = document.createElement("textarea");
    text.id = "note-text";
    text.rows = 5;
    text.maxLength = 2000;
    text.value = note.getData().text || "";
    text.disabled = !editable;
    text.addEventListener("input", () => {
      note.setData({ text: text.value });
      note.attr("label/text", text.value);
      scheduleSave();
    });
    panel.replaceChildren(heading, hint, labelEl, text);
    text.focus();
  }

  // ---- the room around the canvas ------------------------------------------------------
  // The step list, the details panel and the map fold away; full screen leaves only the
  // canvas and its panel. Each choice is remembered in this browser.

  const remembered = (key, fallback) => {
    try { const value = localStorage.getItem(`throughline.${key}`); return value === null ? fallback : value === "1"; } catch (e) { return fallback; }
  };
  const remember = (key, on) => { try { localStorage.setItem(`throughline.${key}`, on ? "1" : "0"); } catch (e) { /* private mode */ } };
  const pressed = (action, on) => {
    const button = document.querySelector(`[data-action="${action}"]`);
    if (button) button.setAttribute(action === "palette" ? "aria-expanded" : "aria-pressed", String(on));
  };

  function showPalette(on) {
    if (!palette) return;
    palette.classList.toggle("collapsed", !on);
    pressed("palette", on);
    const button = palette.querySelector('[data-action="palette"]');
    const words = on ? "Hide the step names" : "Show the step names";
    button.title = words;
    button.setAttribute("aria-label", words);
    remember("palette", on);
  }
  function showPanel(on) {
    root.classList.toggle("panel-closed", !on);
    pressed("panel", on);
    remember("panel", on);
  }
  function showMap(on) {
    if (!mapBox) return;
    mapBox.hidden = !on;
    pressed("minimap", on);
    remember("minimap", on);
    if (on) addMinimap();
  }
  function fullScreen(on) {
    document.body.classList.toggle("full-screen", on);
    pressed("full-screen", on);
    const button = document.querySelector('[data-action="full-screen"]');
    if (button) button.querySelector("use").setAttribute("href", `${icons}#${on ? "leave-full-screen" : "full-screen"}`);
    if (on && document.documentElement.requestFullscreen && !document.fullscreenElement) {
      document.documentElement.requestFullscreen().catch(() => {}); // the window alone will do
    } else if (!on && document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
    }
    sizeDesigner();
  }
  document.addEventListener("fullscreenchange", () => {
    if (!document.fullscreenElement && document.body.classList.contains("full-screen")) fullScreen(false);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.classList.contains("full-screen") && !document.querySelector("dialog[open]")) fullScreen(false);
  });
  keyboard.bindKey(["f"], () => { fullScreen(!document.body.classList.contains("full-screen")); return false; });

  const problemBadge = document.getElementById("problem-badge");
  function showProblemList() {
    showPanel(true);
    const first = problemList.querySelector("button");
    if (first) first.focus();
  }
  if (problemBadge) problemBadge.addEventListener("click", showProblemList);

  const actions = {
    note: addNote, undo, redo, "zoom-in": () => zoom(0.1), "zoom-out": () => zoom(-0.1), fit,
    layout: () => autoLayout(), delete: removeSelection,
    palette: () => showPalette(palette.classList.contains("collapsed")),
    panel: () => showPanel(root.classList.contains("panel-closed")),
    minimap: () => showMap(mapBox.hidden),
    "full-screen": () => fullScreen(!document.body.classList.contains("full-screen")),
  };
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => { actions[button.dataset.action](); if (button.dataset.action !== "note") canvasBox.focus(); });
  }
  showPalette(remembered("palette", true));
  showPanel(remembered("panel", true));
  // The map starts hidden for a journey that fits the view readably, unless asked for before.
  let mapChosen = null;
  try { mapChosen = localStorage.getItem("throughline.minimap"); } catch (e) { /* private mode */ }
  if (mapBox) { mapBox.hidden = mapChosen !== "1"; pressed("minimap", !mapBox.hidden); }
  function updateHistoryButtons() {
    document.querySelector('[data-action="undo"]').disabled = !history.canUndo();
    document.querySelector('[data-action="redo"]').disabled = !history.canRedo();
  }

  // ---- the side panel ---------------------------------------------------------------------
  // The step's form comes from the server (htmx); saving it answers with the saved draft.

  let panelNode = null;
  const panelIntro = panel.innerHTML;
  // A removed step or note takes its form with it: the panel shows its opening text again.
  graph.on("cell:removed", ({ cell }) => {
    if (cell.id !== panelNode) return;
    panelNode = null;
    panel.innerHTML = panelIntro;
  });
  // ---- nothing typed is lost ------------------------------------------------------------
  // A form changed in the panel and not saved yet is saved when the marketer moves on to
  // another step or to the settings; if it cannot be saved (a field is wrong), the panel stays
  // on it with the fields marked. Leaving the page asks first.

  let panelDirty = false;
  function markChanged(event) {
    const form = event.target.closest && event.target.closest("form[hx-post]");
    if (!form || !panel.contains(form) || /(^|-)sample(_customer|_find)?$/.test(event.target.name || "")) return;
    panelDirty = true;
    // A field's error goes once the field is changed; the save judges it again.
    const field = event.target;
    if (field.getAttribute("aria-invalid") === "true") {
      const said = document.getElementById(field.getAttribute("aria-describedby") || "");
      if (said && said.classList.contains("field-error")) said.remove();
      field.removeAttribute("aria-invalid");
    }
    if (!form.querySelector(".pending")) {
      const note = element("p", "muted small pending", "Changed: saved when you choose another step, or now with Save.");
      note.setAttribute("role", "status");
      const button = form.querySelector('button[type="submit"]:not([name])');
      if (button) button.before(note);
    }
  }
  // A name picked under a message template goes in where the cursor is, as {{ name }}; the
  // preview follows as if it had been typed.
  panel.addEventListener("change", (event) => {
    const picker = event.target.closest && event.target.closest("select.insert-name");
    if (!picker || !picker.value) return;
    const box = document.getElementById(picker.dataset.into);
    if (box) {
      const variable = `{{ ${picker.value} }}`;
      const at = box.selectionStart ?? box.value.length;
      box.setRangeText(variable, at, box.selectionEnd ?? at, "end");
      box.focus();
      box.dispatchEvent(new Event("input", { bubbles: true }));
      box.dispatchEvent(new KeyboardEvent("keyup", { bubbles: true }));
    }
    picker.value = "";
  });
  // "Use {{ customer.traits.first_name }}" under a preview puts the name it probably meant
  // in place of the one that would always print empty, wherever the template names it.
  panel.addEventListener("click", (event) => {
    const use = event.target.closest && event.target.closest("button.use-name");
    const box = use && document.getElementById(use.dataset.into);
    if (!box) return;
    const name = use.dataset.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    box.value = box.value.replace(new RegExp(`(?<![\\w.])${name}(?![\\w])`, "g"), use.dataset.meant);
    box.focus();
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.dispatchEvent(new KeyboardEvent("keyup", { bubbles: true }));
  });
  // The customer picked for the previews stays picked on the other steps of the journey,
  // for as long as the tab is open.
  const sampleKey = `throughline.preview-customer.${window.location.pathname}`;
  function sampleCustomer() {
    try { return sessionStorage.getItem(sampleKey) || ""; } catch (e) { return ""; }
  }
  panel.addEventListener("change", (event) => {
    const picked = event.target.closest && event.target.closest("select.sample-customer");
    if (!picked) return;
    try {
      if (picked.value) sessionStorage.setItem(sampleKey, picked.value); else sessionStorage.removeItem(sampleKey);
    } catch (e) { /* private mode: the choice lasts as long as the form */ }
  });
  panel.addEventListener("input", markChanged);
  panel.addEventListener("change", markChanged);
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target === panel) panelDirty = Boolean(panel.querySelector(".pending, .form-error"));
  });
  window.addEventListener("beforeunload", (event) => {
    if (!panelDirty) return;
    event.preventDefault();
    event.returnValue = "";
  });

  // Saves the panel's changed form, if any: true once nothing typed is left unsaved.
  async function leavePanel() {
    const form = panelDirty && panel.querySelector("form[hx-post]");
    if (!form) { panelDirty = false; return true; }
    if (!form.checkValidity()) {
      // The browser names what is wrong with the field (htmx would not send the form).
      form.reportValidity();
      setStatus("Not moved on: fix the fields marked in this step's form first.", true);
      return false;
    }
    await htmx.ajax("POST", form.getAttribute("hx-post"), { source: form, target: "#node-panel", swap: "innerHTML" });
    if (panelDirty) setStatus("Not moved on: fix the fields marked in this step's form first.", true);
    return !panelDirty;
  }
  // Anything else that loads a panel (the settings button) waits for the same.
  document.body.addEventListener("htmx:confirm", (event) => {
    const target = event.detail.target;
    if (!panelDirty || target !== panel || event.detail.verb !== "get") return;
    event.preventDefault();
    leavePanel().then((ok) => { if (ok) event.detail.issueRequest(true); });
  });

  graph.on("selection:changed", async () => {
    const nodes = selection.getSelectedCells().filter((cell) => cell.isNode());
    if (nodes.length !== 1 || !window.htmx) return;
    const node = nodes[0];
    if (node.id === panelNode) return;
    if (panelDirty) {
      const leaving = panelNode;
      if (!(await leavePanel())) {
        const back = leaving && graph.getCellById(leaving);
        selection.clean();
        if (back) selection.select(back); // panelNode is still the step being left
        return;
      }
    }
    panelNode = node.id;
    if (root.classList.contains("panel-closed")) showPanel(true);
    if (isNote(node)) { showNotePanel(node); return; }
    await whenSaved();
    let url = panel.dataset.panelUrl.replace("__node__", encodeURIComponent(node.id));
    const previewFor = sampleCustomer();
    if (previewFor) url += `?customer=${encodeURIComponent(previewFor)}`;
    if (!root.dataset.version) htmx.ajax("GET", url, { target: "#node-panel", swap: "innerHTML" });
  });
  graph.on("blank:click", () => { panelNode = null; });
  // The journey's settings share the panel: a step clicked afterwards loads its form again.
  const settingsButton = document.getElementById("journey-settings");
  if (settingsButton) settingsButton.addEventListener("click", () => { panelNode = null; selection.clean(); });

  document.body.addEventListener("draftSaved", (event) => {
    const answer = event.detail;
    revision = answer.revision;
    documentBase = answer.document;
    loading = true;
    for (const item of answer.document.nodes) {
      const node = graph.getCellById(item.id);
      if (node) node.setData({ config: item.config, label: item.label || "" }, { overwrite: false, deep: false });
    }
    loading = false;
    updatePorts(answer.ports);
    showSummaries(answer.summaries);
    showProblems(answer.problems);
    setStatus(`Saved · revision ${revision}`);
  });

  // ---- live counts ----------------------------------------------------------------------
  // On a published journey, htmx polls the figures; each step shows how many entered it,
  // wait there and went on. Counting is not an edit: it stays out of undo and autosave.

  let counts = null;
  document.body.addEventListener("liveCounts", (event) => {
    const figures = event.detail;
    counts = figures.nodes || {};
    showFigures();
    const line = document.getElementById("live-figures");
    if (line) {
      line.textContent = `${figures.entered} entered, ${figures.active} in it now, ` +
        `${figures.completed} completed, ${figures.converted} converted.`;
    }
  });

  // Each step's figures, with its arrivals as a share of the arrivals at the steps leading
  // to it; a step no one reached shows zeros, not nothing.
  const ZERO = { entered: 0, waiting: 0, completed: 0, failed: 0, deliveries: { delivered: 0, suppressed: 0, failed: 0 } };
  function showFigures() {
    if (!counts) return;
    for (const node of steps()) {
      const mine = counts[node.id] || ZERO;
      const before = graph.getIncomingEdges(node) || [];
      const sources = new Set(before.map((edge) => edge.getSourceCellId()).filter((id) => id !== node.id));
      let share = null;
      if (sources.size) {
        const arrived = [...sources].reduce((sum, id) => sum + ((counts[id] || ZERO).entered || 0), 0);
        share = arrived ? Math.round((100 * mine.entered) / arrived) : null;
      }
      const figures = { ...mine, share };
      const had = node.getData().figures;
      if (JSON.stringify(had) !== JSON.stringify(figures)) setViewData(node, { figures });
      const view = graph.findViewByCell(node);
      if (view) {
        view.container.setAttribute("data-entered", mine.entered);
        view.container.setAttribute("data-waiting", mine.waiting);
        view.container.setAttribute("data-completed", mine.completed);
      }
    }
  }

  // ---- simulation -------------------------------------------------------------------------
  // The server runs the draft on a virtual clock; the canvas lights the path step by step.

  const sim = document.getElementById("simulate");
  let lit = [];
  let lighting = null;

  // When an event comes, after the one before: "now", "30 minutes", "2 hours", "3 days",
  // "1 week" (or an ISO 8601 duration such as PT2H, as the API takes).
  const UNITS = { minute: "M", hour: "H", day: "D", week: "W" };
  const WHEN = /^(now|P\S+|(\d+)\s*(minutes?|mins?|m|hours?|h|days?|d|weeks?|w))\s+/i;
  function readAfter(words) {
    if (words.toLowerCase() === "now") return "PT0S";
    if (/^P/i.test(words)) return words.toUpperCase();
    const [, amount, unit] = words.match(/^(\d+)\s*([a-z]+)$/i);
    const key = Object.keys(UNITS).find((name) => name.startsWith(unit.toLowerCase()[0]));
    const letter = UNITS[key];
    return letter === "D" || letter === "W" ? `P${amount}${letter}` : `PT${amount}${letter}`;
  }

  function readEvents(text) {
    const events = [];
    text.split("\n").forEach((line, index) => {
      if (!line.trim()) return;
      const when = line.trim().match(WHEN);
      const rest = when ? line.trim().slice(when[0].length) : "";
      const match = rest.match(/^(\S+)\s*(.*)$/);
      if (!when || !match) {
        throw new Error(`Line ${index + 1}: write when it comes, then the event, e.g. "now cart_abandoned" or "2 hours order_completed {\"total\": 40}".`);
      }
      let properties = {};
      if (match[2]) {
        try { properties = JSON.parse(match[2]); } catch (error) {
          throw new Error(`Line ${index + 1}: the event's details after its name must be JSON, e.g. {"cart_value": 120} (${error.message}).`);
        }
      }
      events.push({ after: readAfter(when[1]), type: match[1], properties });
    });
    return events;
  }

  // The sample customer's traits: a table of names and values (numbers and true/false taken
  // as such), or the same as JSON for those who prefer it.
  const traitRows = document.getElementById("sim-trait-rows");
  const traitsJson = document.getElementById("sim-traits-json");
  const traitsMode = document.getElementById("sim-traits-mode");
  const addTrait = document.getElementById("sim-add-trait");
  function cell(child) {
    const td = document.createElement("td");
    td.append(child);
    return td;
  }
  function traitRow(name, value) {
    const row = document.createElement("tr");
    const nameBox = Object.assign(document.createElement("input"), { type: "text", value: name, className: "sim-trait-name", autocomplete: "off", spellcheck: false });
    const valueBox = Object.assign(document.createElement("input"), { type: "text", value, className: "sim-trait-value", autocomplete: "off" });
    const remove = Object.assign(document.createElement("button"), { type: "button", className: "rb-remove sim-trait-remove", textContent: "✕" });
    row.append(cell(nameBox), cell(valueBox), cell(remove));
    return row;
  }
  function numberTraits() {
    [...traitRows.rows].forEach((row, index) => {
      row.querySelector(".sim-trait-name").setAttribute("aria-label", `Name of trait ${index + 1}`);
      row.querySelector(".sim-trait-value").setAttribute("aria-label", `Value of trait ${index + 1}`);
      const remove = row.querySelector(".sim-trait-remove");
      remove.setAttribute("aria-label", `Remove trait ${index + 1}`);
      remove.title = "Remove this trait";
    });
  }
  function showTraits(traits) {
    const rows = Object.entries(traits).map(([name, value]) =>
      traitRow(name, typeof value === "string" ? value : JSON.stringify(value)));
    traitRows.replaceChildren(...(rows.length ? rows : [traitRow("", "")]));
    numberTraits();
  }
  function typedValue(raw) {
    if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
    if (raw === "true" || raw === "false") return raw === "true";
    if (/^[[{]/.test(raw)) { try { return JSON.parse(raw); } catch (e) { /* text after all */ } }
    return raw;
  }
  function tableTraits() {
    const traits = {};
    [...traitRows.rows].forEach((row, index) => {
      const name = row.querySelector(".sim-trait-name").value.trim();
      const raw = row.querySelector(".sim-trait-value").value.trim();
      if (!name && !raw) return;
      if (!name) throw new Error(`Trait ${index + 1}: give it a name, e.g. tier.`);
      traits[name] = typedValue(raw);
    });
    return traits;
  }
  function jsonTraits() {
    const text = traitsJson.value.trim();
    if (!text) return {};
    let traits;
    try { traits = JSON.parse(text); } catch (e) {
      throw new Error('The traits cannot be read: write them as {"first_name": "Ada", "tier": "vip"}, names and text in double quotes.');
    }
    if (!traits || typeof traits !== "object" || Array.isArray(traits)) {
      throw new Error('Write the traits as names with their values, e.g. {"first_name": "Ada", "tier": "vip"}.');
    }
    return traits;
  }
  function readTraits() {
    return traitsJson.hidden ? tableTraits() : jsonTraits();
  }
  if (traitRows) {
    showTraits(JSON.parse(traitRows.closest("[data-traits]").dataset.traits));
    addTrait.addEventListener("click", () => {
      const row = traitRow("", "");
      traitRows.append(row);
      numberTraits();
      row.querySelector("input").focus();
    });
    traitRows.addEventListener("click", (event) => {
      const remove = event.target.closest(".sim-trait-remove");
      if (!remove) return;
      const row = remove.closest("tr");
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      if (!traitRows.rows.length) traitRows.append(traitRow("", ""));
      numberTraits();
      (next && next.isConnected ? next.querySelector("input") : addTrait).focus();
    });
    // Table and JSON show the same traits: switching carries them over.
    traitsMode.addEventListener("click", () => {
      const error = document.getElementById("sim-error");
      error.hidden = true;
      const table = document.getElementById("sim-trait-table");
      try {
        if (traitsJson.hidden) traitsJson.value = JSON.stringify(tableTraits(), null, 2);
        else showTraits(jsonTraits());
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
        return;
      }
      const toJson = traitsJson.hidden;
      traitsJson.hidden = !toJson;
      table.hidden = toJson;
      addTrait.hidden = toJson;
      traitsMode.textContent = toJson ? "Edit the traits in a table" : "Edit the traits as JSON";
      (toJson ? traitsJson : traitRows.querySelector("input")).focus();
    });
  }

  function unlight() {
    clearInterval(lighting);
    for (const id of lit) {
      const node = graph.getCellById(id);
      if (node) setViewData(node, { lit: false });
    }
    lit = [];
  }

  function light(steps) {
    unlight();
    let index = 0;
    const items = document.querySelectorAll("#sim-result li[data-step]");
    lighting = setInterval(() => {
      if (index >= steps.length) { clearInterval(lighting); return; }
      const node = graph.getCellById(steps[index].node);
      if (node) { setViewData(node, { lit: true }); lit.push(node.id); }
      if (items[index]) items[index].classList.add("lit");
      index += 1;
    }, 350);
  }

  function showResult(result) {
    const box = document.getElementById("sim-result");
    box.replaceChildren();
    const final = document.createElement("p");
    final.innerHTML = `<strong>Ends ${result.final}</strong>, ${result.steps.length} steps, ${result.sends.length} message${result.sends.length === 1 ? "" : "s"}.`;
    box.append(final);
    const list = document.createElement("ol");
    list.className = "sim-steps";
    result.steps.forEach((step, index) => {
      const li = document.createElement("li");
      li.dataset.step = index;
      const reason = step.detail && (step.detail.reason || step.detail.port || step.detail.branch || "");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      const node = graph.getCellById(step.node);
      button.textContent = `${node ? stepName(node) : step.node}: ${step.outcome}`;
      button.addEventListener("click", () => focusNode(step.node));
      li.append(button);
      if (reason) li.append(document.createTextNode(` — ${typeof reason === "string" ? reason : JSON.stringify(reason)}`));
      const at = document.createElement("small");
      at.className = "muted";
      at.textContent = ` ${step.at.replace("T", " ").slice(0, 16)}`;
      li.append(at);
      list.append(li);
    });
    box.append(list);
    for (const send of result.sends) {
      const card = document.createElement("div");
      card.className = "sim-send";
      const title = document.createElement("strong");
      const from = graph.getCellById(send.node);
      title.textContent = `${from ? stepName(from) : send.node} → ${send.channel}`;
      const body = document.createElement("pre");
      body.textContent = JSON.stringify(send.message, null, 2);
      card.append(title, body);
      box.append(card);
    }
    light(result.steps);
  }

  if (sim) {
    sim.addEventListener("toggle", () => { if (!sim.open) unlight(); });
    document.getElementById("sim-run").addEventListener("click", async () => {
      const error = document.getElementById("sim-error");
      error.hidden = true;
      let body;
      try {
        const traits = readTraits();
        body = { customer: { traits }, events: readEvents(document.getElementById("sim-events").value) };
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
        return;
      }
      await whenSaved();
      const response = await fetch(sim.dataset.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
      if (!response.ok) {
        // The API names the input at fault by its path (events[2].after): here, by its line.
        const line = /^events\[(\d+)\]/.exec(answer.field || "");
        error.textContent = line ? `Event line ${Number(line[1]) + 1}: ${answer.error}` : answer.error;
        error.hidden = false;
        return;
      }
      showResult(answer);
    });
  }

  // ---- start ------------------------------------------------------------------------------

  canvasBox.tabIndex = 0;
  const draftRequest = window.throughlineDraft || fetch(draftUrl, { headers: { Accept: "application/json" } });
  draftRequest
    .then((response) => response.json())
    .then((answer) => {
      performance.mark("throughline:draft-loaded");
      revision = answer.revision;
      draw(answer);
      // Figures that arrived before the steps were drawn are shown now.
      showFigures();
      performance.mark("throughline:drawn");
      history.clean();
      updateHistoryButtons();
      requestAnimationFrame(() => {
        const box = canvasBox.getBoundingClientRect();
        if (openedAt !== `${box.width}x${box.height}`) openView(); // the page changed size meanwhile
        performance.mark("throughline:opened");
        const later = window.requestIdleCallback || ((fn) => setTimeout(fn, 50));
        later(() => { if (!mapBox.hidden) addMinimap(); }, { timeout: 1000 });
      });
      setStatus(`Revision ${revision}`);
      // A link to one step (from the publish review) opens the canvas on its form.
      const asked = new URLSearchParams(window.location.search).get("step");
      if (asked) focusNode(asked);
      root.dataset.ready = "true";
    })
    .catch(() => setStatus("The draft could not be loaded; reload the page.", true));

  window.throughlineDesigner = { graph, selection, currentDocument, save };
})();
