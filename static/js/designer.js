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
  const NODE_W = 220;
  const NODE_H = 64;

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
    panning: { enabled: true, eventTypes: ["rightMouseDown", "leftMouseDown"], modifiers: "shift" },
    mousewheel: { enabled: true, modifiers: ["ctrl", "meta"], minScale: 0.2, maxScale: 2 },
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
  const keyboard = new X6.Keyboard({ enabled: true, global: false });
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
  function edgeStyle() {
    return {
      router: routing,
      attrs: { line: { stroke: "#5a6b8c", strokeWidth: 2, targetMarker: { name: "block", width: 10, height: 8 } } },
      zIndex: 0,
    };
  }

  const portGroups = {
    in: {
      position: "top",
      attrs: { circle: { r: 6, magnet: "passive", stroke: "#5a6b8c", strokeWidth: 2, fill: "#fff" } },
    },
    out: {
      position: "bottom",
      label: { position: { name: "bottom", args: { y: 10 } } },
      attrs: {
        circle: { r: 7, magnet: true, stroke: "#1f6feb", strokeWidth: 2, fill: "#fff", cursor: "crosshair" },
        text: { fontSize: 11, fill: "#334" },
      },
    },
  };

  function portItems(type, ports) {
    const items = type === "trigger" ? [] : [{ id: "in", group: "in" }];
    for (const port of ports) {
      items.push({
        id: `out:${port.name}`,
        group: "out",
        attrs: { text: { text: port.name === "out" ? "" : port.name + (port.required ? "" : "?") } },
      });
    }
    return items;
  }

  function label(node) {
    const item = byType[node.type];
    return `${item ? item.label : node.type}\n${node.id}`;
  }

  function nodeSpec(node, position, ports) {
    return {
      id: node.id,
      shape: "rect",
      x: position.x,
      y: position.y,
      width: NODE_W,
      height: NODE_H,
      attrs: {
        body: { rx: 8, ry: 8, fill: "#ffffff", stroke: "#9aa7bf", strokeWidth: 1.5 },
        label: { text: label(node), fontSize: 13, fill: "#1d2433" },
      },
      ports: { groups: portGroups, items: portItems(node.type, ports) },
      data: { type: node.type, config: node.config || {} },
    };
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

  function draw(answer) {
    loading = true;
    const doc = answer.document;
    documentBase = doc;
    const layout = doc.layout || {};
    routing = (doc.nodes || []).length > 80
      ? { name: "orth", args: { padding: 16 } }
      : { name: "manhattan", args: { padding: 16 } };
    // One batch: the views are drawn once, not after every cell.
    const cells = (doc.nodes || []).map((node, index) => graph.createNode(nodeSpec(
      node,
      layout[node.id] || { x: 80 + (index % 4) * 260, y: 60 + Math.floor(index / 4) * 140 },
      answer.ports[node.id] || [],
    )));
    const ids = new Set(cells.map((cell) => cell.id));
    for (const note of Array.isArray(layout.notes) ? layout.notes : []) {
      if (note && typeof note.id === "string" && !ids.has(note.id)) cells.push(graph.createNode(noteSpec(note)));
    }
    for (const edge of doc.edges || []) {
      if (!ids.has(edge.from) || !ids.has(edge.to)) continue;
      cells.push(graph.createEdge({
        ...edgeStyle(),
        source: { cell: edge.from, port: `out:${edge.port || "out"}` },
        target: { cell: edge.to, port: "in" },
      }));
    }
    // Set the view first, so that only the steps in it get drawn.
    const fitAfter = !openView(contentBox(cells.filter((cell) => cell.isNode() && !isNote(cell))), cells);
    graph.resetCells(cells);
    loading = false;
    // A document without a layout, or one drawn for other node sizes, is arranged on open;
    // the arrangement is saved with the marketer's first edit.
    if (Object.keys(layout).length === 0 || overlapping()) {
      autoLayout(false);
      openView();
    } else if (fitAfter) {
      fit();
    }
    showProblems(answer.problems);
  }

  function overlapping() {
    const boxes = steps().map((node) => node.getBBox());
    for (let i = 0; i < boxes.length; i += 1) {
      for (let j = i + 1; j < boxes.length; j += 1) {
        if (boxes[i].isIntersectWithRect(boxes[j])) return true;
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
    for (const edge of graph.getEdges()) {
      const port = (edge.getSourcePortId() || "out:out").replace(/^out:/, "");
      const to = edge.getTargetCellId();
      if (!to) continue;
      const item = { from: edge.getSourceCellId(), to };
      if (port !== "out") item.port = port;
      edges.push(item);
    }
    return {
      ...documentBase,
      nodes: nodes.map((node) => ({ id: node.id, type: node.getData().type, config: node.getData().config })),
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
      if (saveAgain) { saveAgain = false; scheduleSave(); }
    }
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

  function updatePorts(ports) {
    // Keep the ports that stay (and their edges); add the new ones, drop the gone ones.
    loading = true;
    for (const node of steps()) {
      const wanted = portItems(node.getData().type, ports[node.id] || []);
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
    const wasLoading = loading;
    loading = true; // marking problems is not an edit: keep it out of undo and autosave
    for (const id of marked) {
      const node = graph.getCellById(id);
      if (node) node.attr("body/stroke", "#9aa7bf");
    }
    marked.clear();
    problemList.replaceChildren();
    document.getElementById("problem-count").textContent = problems.length
      ? `${problems.length} problem${problems.length === 1 ? "" : "s"}`
      : "No problems";
    for (const problem of problems) {
      const node = problem.node && graph.getCellById(problem.node);
      if (node && node.isNode() && !marked.has(node.id)) {
        node.attr("body/stroke", "#c62828");
        marked.add(node.id);
      }
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.textContent = problem.node ? `${problem.node}: ${problem.message}` : problem.message;
      button.addEventListener("click", () => focusNode(problem.node));
      li.append(button);
      problemList.append(li);
    }
    loading = wasLoading;
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
      const first = problemList.querySelector("button");
      if (first) first.focus();
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

  function newId(type) {
    let n = 1;
    while (graph.getCellById(`${type}_${n}`)) n += 1;
    return `${type}_${n}`;
  }

  function addNode(type, point) {
    const item = byType[type];
    const at = point || graph.graphToLocal(graph.getGraphArea().center);
    const node = graph.addNode(
      nodeSpec({ id: newId(type), type, config: structuredClone(item.config) },
        { x: Math.round(at.x - NODE_W / 2), y: Math.round(at.y - NODE_H / 2) }, item.ports),
    );
    selection.clean();
    selection.select(node);
    return node;
  }

  for (const button of document.querySelectorAll("#palette [data-node-type]")) {
    button.addEventListener("click", () => addNode(button.dataset.nodeType));
    button.addEventListener("dragstart", (event) => {
      event.dataTransfer.setData("application/x-throughline-node", button.dataset.nodeType);
      event.dataTransfer.effectAllowed = "copy";
    });
  }
  const canvasBox = document.getElementById("canvas");
  canvasBox.addEventListener("dragover", (event) => {
    if (editable && event.dataTransfer.types.includes("application/x-throughline-node")) event.preventDefault();
  });
  canvasBox.addEventListener("drop", (event) => {
    const type = event.dataTransfer.getData("application/x-throughline-node");
    if (!type || !editable) return;
    event.preventDefault();
    addNode(type, graph.clientToLocal(event.clientX, event.clientY));
  });

  // One edge per output port: a new connection from a port replaces the old one.
  graph.on("edge:connected", ({ edge, isNew }) => {
    const port = edge.getSourcePortId();
    for (const other of graph.getConnectedEdges(edge.getSourceCell(), { outgoing: true })) {
      if (other !== edge && other.getSourcePortId() === port) other.remove();
    }
    if (isNew) scheduleSave();
  });
  graph.on("cell:added", ({ cell }) => { if (cell.isNode()) scheduleSave(); });
  graph.on("cell:removed", scheduleSave);
  // Moving a step by itself or with the selection it belongs to (the latter fires no node:moved).
  graph.on("node:change:position", scheduleSave);
  graph.on("edge:change:target", ({ edge }) => { if (edge.getTargetCellId()) scheduleSave(); });
  graph.on("history:change", updateHistoryButtons);

  function removeSelection() {
    if (!editable) return false;
    const cells = selection.getSelectedCells();
    if (cells.length) graph.removeCells(cells);
    return false;
  }
  function undo() { if (history.canUndo()) history.undo(); return false; }
  function redo() { if (history.canRedo()) history.redo(); return false; }
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
  const toolbar = document.querySelector(".stage .toolbar");
  function fitPadding() {
    const below = toolbar ? toolbar.getBoundingClientRect().bottom - canvasBox.getBoundingClientRect().top : 0;
    return { top: Math.max(72, Math.round(below + 24)), right: 40, bottom: 40, left: 40 };
  }
  // X6's zoomToFit centres the journey in the whole canvas, under the toolbar: this centres
  // it in the part left free by the padding.
  function fit() {
    const area = graph.getContentArea();
    if (area.width === 0 && area.height === 0) return false;
    const box = canvasBox.getBoundingClientRect();
    const pad = fitPadding();
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
  const READABLE = 0.6;
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
    const padding = fitPadding();
    const across = (box.width - padding.left - padding.right) / Math.max(area.width, 1);
    const down = (box.height - padding.top - padding.bottom) / Math.max(area.height, 1);
    if (Math.min(across, down) >= READABLE) {
      if (cells) return false; // before the cells are in the graph, Fit has nothing to measure
      fit();
      return true;
    }
    graph.zoomTo(READABLE);
    // The journey's top left corner at the top left of the canvas, below the toolbar.
    const sx = READABLE;
    graph.translate(
      padding.left - area.x * sx,
      padding.top - area.y * sx,
    );
    drawView();
    return true;
  }

  function autoLayout(record = true) {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "TB", nodesep: 50, ranksep: 56 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const node of steps()) g.setNode(node.id, { width: NODE_W, height: NODE_H + 24 });
    for (const edge of graph.getEdges()) {
      if (edge.getTargetCellId()) g.setEdge(edge.getSourceCellId(), edge.getTargetCellId());
    }
    dagre.layout(g);
    const move = () => {
      for (const node of steps()) {
        const p = g.node(node.id);
        node.position(Math.round(p.x - NODE_W / 2), Math.round(p.y - p.height / 2));
      }
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
    portSelect.replaceChildren(...ports.map((port) => new Option(port.id.replace(/^out:/, ""), port.id)));
    const targets = steps().filter((other) => other !== node && other.hasPort("in"));
    targetSelect.replaceChildren(...targets.map((other) => new Option(label({ id: other.id, type: other.getData().type }).replace("\n", " · "), other.id)));
    connectDialog.querySelector("[data-connect-from]").textContent = node.id;
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
    graph.addEdge({ ...edgeStyle(), source: { cell: node.id, port }, target: { cell: to, port: "in" } });
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

  // A note's text is typed in the side panel; the note shows it as it is typed.
  function addNote() {
    if (!editable) return false;
    const at = graph.graphToLocal(graph.getGraphArea().center);
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

  const actions = { note: addNote, undo, redo, "zoom-in": () => zoom(0.1), "zoom-out": () => zoom(-0.1), fit, layout: () => autoLayout(), delete: removeSelection };
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => { actions[button.dataset.action](); if (button.dataset.action !== "note") canvasBox.focus(); });
  }
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
  graph.on("selection:changed", async () => {
    const nodes = selection.getSelectedCells().filter((cell) => cell.isNode());
    if (nodes.length !== 1 || !window.htmx) return;
    const node = nodes[0];
    if (node.id === panelNode) return;
    panelNode = node.id;
    if (isNote(node)) { showNotePanel(node); return; }
    if (saveTimer || saving) { clearTimeout(saveTimer); saveTimer = null; await save(); }
    const url = panel.dataset.panelUrl.replace("__node__", encodeURIComponent(node.id));
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
      if (node) node.setData({ config: item.config }, { overwrite: false, deep: false });
    }
    loading = false;
    updatePorts(answer.ports);
    showProblems(answer.problems);
    setStatus(`Saved · revision ${revision}`);
  });

  // ---- live counts ----------------------------------------------------------------------
  // On a published journey, htmx polls the figures; each step shows how many entered it,
  // wait there and went on. Counting is not an edit: it stays out of undo and autosave.

  let counts = {};
  document.body.addEventListener("liveCounts", (event) => {
    const figures = event.detail;
    counts = figures.nodes || {};
    loading = true;
    for (const node of steps()) relabel(node);
    loading = false;
    const line = document.getElementById("live-figures");
    if (line) {
      line.textContent = `${figures.entered} entered, ${figures.active} in it now, ` +
        `${figures.completed} completed, ${figures.converted} converted.`;
    }
  });

  function relabel(node) {
    const base = label({ id: node.id, type: node.getData().type });
    const c = counts[node.id];
    node.attr("label/text", c ? `${base}\n${c.entered} in · ${c.waiting} waiting · ${c.completed} on` : base);
    const view = graph.findViewByCell(node);
    if (view && c) {
      view.container.setAttribute("data-entered", c.entered);
      view.container.setAttribute("data-waiting", c.waiting);
      view.container.setAttribute("data-completed", c.completed);
    }
  }

  // ---- simulation -------------------------------------------------------------------------
  // The server runs the draft on a virtual clock; the canvas lights the path step by step.

  const sim = document.getElementById("simulate");
  let lit = [];
  let lighting = null;

  function readEvents(text) {
    const events = [];
    text.split("\n").forEach((line, index) => {
      if (!line.trim()) return;
      const match = line.trim().match(/^(\S+)\s+(\S+)\s*(.*)$/);
      if (!match) throw new Error(`line ${index + 1}: write it as: after type {properties}`);
      let properties = {};
      if (match[3]) {
        try { properties = JSON.parse(match[3]); } catch (error) {
          throw new Error(`line ${index + 1}: the properties are not JSON (${error.message})`);
        }
      }
      events.push({ after: match[1], type: match[2], properties });
    });
    return events;
  }

  function unlight() {
    clearInterval(lighting);
    loading = true;
    for (const id of lit) {
      const node = graph.getCellById(id);
      if (node) node.attr("body/fill", "#ffffff");
    }
    loading = false;
    lit = [];
  }

  function light(steps) {
    unlight();
    let index = 0;
    const items = document.querySelectorAll("#sim-result li[data-step]");
    lighting = setInterval(() => {
      if (index >= steps.length) { clearInterval(lighting); return; }
      const node = graph.getCellById(steps[index].node);
      loading = true;
      if (node) { node.attr("body/fill", "#dff5e3"); lit.push(node.id); }
      loading = false;
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
      button.textContent = `${step.node}: ${step.outcome}`;
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
      title.textContent = `${send.node} → ${send.channel}`;
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
        let traits;
        try { traits = JSON.parse(document.getElementById("sim-traits").value || "{}"); } catch (e) {
          throw new Error(`The traits are not JSON (${e.message}).`);
        }
        body = { customer: { traits }, events: readEvents(document.getElementById("sim-events").value) };
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
        return;
      }
      if (saveTimer || saving) { clearTimeout(saveTimer); saveTimer = null; await save(); }
      const response = await fetch(sim.dataset.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
      if (!response.ok) {
        error.textContent = answer.field ? `${answer.field}: ${answer.error}` : answer.error;
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
      loading = true;
      for (const node of steps()) if (counts[node.id]) relabel(node);
      loading = false;
      performance.mark("throughline:drawn");
      history.clean();
      updateHistoryButtons();
      requestAnimationFrame(() => {
        const box = canvasBox.getBoundingClientRect();
        if (openedAt !== `${box.width}x${box.height}`) openView(); // the page changed size meanwhile
        performance.mark("throughline:opened");
        const later = window.requestIdleCallback || ((fn) => setTimeout(fn, 50));
        later(addMinimap, { timeout: 1000 });
      });
      setStatus(`Revision ${revision}`);
      root.dataset.ready = "true";
    })
    .catch(() => setStatus("The draft could not be loaded; reload the page.", true));

  window.throughlineDesigner = { graph, currentDocument, save };
})();
