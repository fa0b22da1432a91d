// The view of the journey: zoom, Fit, the view a journey opens at, and bringing a step into
// view. The toolbar, the step list and the map float over the canvas, so the journey is
// fitted in the part of the canvas they leave free.

import { graph, isNote, selection, steps } from "./canvas.js";
import { NODE_W } from "./cells.js";
import { page } from "./page.js";
import { mapChosen, pressed } from "./room.js";

// The toolbar floats over the canvas and wraps to two lines on a narrow stage: the journey
// is fitted below it, whatever its height.
// The palette floats on its left and the map in a corner: the journey is fitted beside them,
// the map's side (right or below) being whichever leaves the steps larger.
export function fitPadding(area) {
  const { canvasBox, toolbar, palette, mapBox } = page;
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
export function fit() {
  const area = graph.getContentArea();
  if (area.width === 0 && area.height === 0) return false;
  const box = page.canvasBox.getBoundingClientRect();
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
export function drawView() {
  const area = graph.getGraphArea();
  area.inflate(160, 160);
  graph.renderer.setRenderArea(area);
}

export function zoom(delta) {
  graph.zoom(delta, { minScale: 0.2, maxScale: 2 });
  drawView();
  return false;
}

// Opening a journey fits it to the screen, unless that would make its steps too small to read:
// then it opens at a readable size on its first steps (Fit still shows the whole journey).
const READABLE = 0.7;
export function contentBox(nodes) {
  if (!nodes.length) return null;
  let box = nodes[0].getBBox();
  for (const node of nodes.slice(1)) box = box.union(node.getBBox());
  return box;
}

// The canvas's size when the journey was last opened ("640x480"): the page may change size
// before its first frame, and the journey is then opened again.
export let openedAt = "";

// Before the cells are in the graph (`cells` given), a journey that fits readably is left for
// fit() to place afterwards: the answer is false then.
export function openView(content, cells) {
  const nodes = cells ? cells.filter((cell) => cell.isNode() && !isNote(cell)) : steps();
  const box = page.canvasBox.getBoundingClientRect();
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
  const mapBox = page.mapBox;
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

// The middle of the part of the canvas that the toolbar and the palette leave free, in the
// journey's coordinates: where a step or note added without a place goes.
export function freeCenter() {
  const box = page.canvasBox.getBoundingClientRect();
  const pad = fitPadding();
  return graph.clientToLocal(
    box.left + pad.left + (box.width - pad.left - pad.right) / 2,
    box.top + pad.top + (box.height - pad.top - pad.bottom) / 2,
  );
}

// A step added out of sight (below the view, under the step list) is brought into it, so
// that its ports can be reached at once.
export function bringIntoView(node) {
  const box = page.canvasBox.getBoundingClientRect();
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

// Selects the step (or note) `id` and centres the view on it.
export function focusNode(id) {
  const node = id && graph.getCellById(id);
  if (!node) return;
  selection.clean();
  selection.select(node);
  graph.centerCell(node);
  drawView();
}
