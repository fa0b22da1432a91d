// Autosave: every edit schedules a save of the whole document with the revision the canvas
// holds; the server answers with the new revision, the problems and each step's ports. A save
// refused because someone else saved first (412) offers the marketer's version as a download.

import { graph, isNote, isQuiet, steps } from "./canvas.js";
import { journeyDocument } from "./document.js";
import { showSummaries, updatePorts } from "./drawing.js";
import { page, setStatus } from "./page.js";
import { showProblems } from "./problems.js";

// The draft as the server last answered it: its revision, and its document (whose keys the
// canvas does not draw are sent back as they are).
export let revision = 0;
let documentBase = {};

// The save queue: a save waiting to start, one under way, another wanted after it, and
// whoever waits for them all (see whenSaved).
let saveTimer = null;
let saving = false;
let saveAgain = false;
let conflicted = false;
const waiting = [];

export function rememberDraft(newRevision, doc) {
  revision = newRevision;
  documentBase = doc;
}

// The document as the canvas shows it now.
export function currentDocument() {
  return journeyDocument(documentBase, {
    cellIds: new Set(graph.getCells().map((cell) => cell.id)),
    steps: steps().map((node) => {
      const p = node.getPosition();
      const data = node.getData();
      return { id: node.id, x: p.x, y: p.y, type: data.type, label: data.label, config: data.config };
    }),
    notes: graph.getNodes().filter(isNote).map((note) => {
      const p = note.getPosition();
      return { id: note.id, x: p.x, y: p.y, text: note.getData().text };
    }),
    edges: graph.getEdges().map((edge) => ({
      from: edge.getSourceCellId(),
      sourcePort: edge.getSourcePortId(),
      to: edge.getTargetCellId(),
      // An edge on its route from Arrange goes straight through its bends (maybe none).
      route: (edge.getRouter() || {}).name === "normal" ? edge.getVertices() : null,
    })),
  });
}

export function scheduleSave() {
  if (isQuiet() || !page.editable || conflicted) return;
  setStatus("Unsaved changes…");
  clearTimeout(saveTimer);
  saveTimer = setTimeout(save, 500);
}

export async function save() {
  saveTimer = null; // the timer that called this has fired, or whoever called cleared it
  if (saving) { saveAgain = true; return; }
  saving = true;
  const sent = currentDocument();
  try {
    const response = await fetch(page.draftUrl, {
      method: "PUT",
      headers: { "Content-Type": "application/json", "X-CSRFToken": page.csrf },
      body: JSON.stringify({ revision, document: sent }),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      const before = revision;
      rememberDraft(answer.revision, answer.document);
      showSaved(answer);
      // The canvas saved what it holds, the steps' settings as the panel last saved them: a
      // form in the panel loaded at the revision before is as current at this one.
      document.body.dispatchEvent(
        new CustomEvent("canvasSaved", { detail: { from: before, to: answer.revision } }),
      );
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

// What the server said of a saved draft (by the canvas, or by a form in the side panel):
// each step's ports and summary, and the problems.
export function showSaved(answer) {
  updatePorts(answer.ports);
  showSummaries(answer.summaries);
  showProblems(answer.problems);
  setStatus(`Saved · revision ${revision}`);
}

// Resolves once every change made so far is on the server (or could not be saved): the
// side panel and the simulation ask the server about the draft only then.
export function whenSaved() {
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
