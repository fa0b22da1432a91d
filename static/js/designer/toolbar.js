// The buttons over the canvas (undo, zoom, Fit, Arrange, Note, the map, the panel, full
// screen) and the step list's fold button: each names its command in data-action.

import { autoLayout } from "./arrange.js";
import { redo, removeSelection, undo } from "./editing.js";
import { addNote } from "./notes.js";
import { page } from "./page.js";
import { fullScreen, restoreRoom, showMap, showPalette, showPanel } from "./room.js";
import { fit, zoom } from "./view.js";

export function setUpToolbar() {
  const actions = {
    note: addNote, undo, redo, "zoom-in": () => zoom(0.1), "zoom-out": () => zoom(-0.1), fit,
    layout: () => autoLayout(), delete: removeSelection,
    palette: () => showPalette(page.palette.classList.contains("collapsed")),
    panel: () => showPanel(page.root.classList.contains("panel-closed")),
    minimap: () => showMap(page.mapBox.hidden),
    "full-screen": () => fullScreen(!document.body.classList.contains("full-screen")),
  };
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => { actions[button.dataset.action](); if (button.dataset.action !== "note") page.canvasBox.focus(); });
  }
  restoreRoom();
}
