// The page around the canvas, read once when the canvas starts (readPage): the designer's
// settings from its data attributes, the step types of the step list, and the elements
// several parts use. Also the status line under the journey's name, and what is said to a
// screen reader alone.

export let page = null;

export function readPage(root) {
  const catalogue = JSON.parse(document.getElementById("palette-data").textContent);
  page = Object.freeze({
    root,
    csrf: document.querySelector('meta[name="csrf-token"]').content,
    draftUrl: root.dataset.draftUrl,
    editable: root.dataset.editable === "true",
    // The step list's items by type: label, help, summary, default config and ports.
    byType: Object.fromEntries(catalogue.map((item) => [item.type, item])),
    icons: root.dataset.icons,
    canvasBox: document.getElementById("canvas"),
    panel: document.getElementById("node-panel"),
    problemList: document.getElementById("problems"),
    publishLink: document.getElementById("publish-link"),
    toolbar: document.querySelector(".stage .toolbar"),
    palette: document.getElementById("palette"),
    mapBox: document.getElementById("minimap"),
    statusLine: document.getElementById("save-status"),
    announcer: document.getElementById("canvas-announce"),
  });
}

export function setStatus(text, bad) {
  page.statusLine.textContent = text;
  page.statusLine.classList.toggle("bad", Boolean(bad));
}

// Words for a screen reader alone (what the keyboard chose on the canvas): a sighted user
// sees the choice, and the status line keeps saying whether the draft is saved.
export function announce(text) {
  // Emptied first, so that the same words said again (the same step chosen again) are read.
  page.announcer.textContent = "";
  setTimeout(() => { page.announcer.textContent = text; }, 30);
}
