// Sticky notes for the people editing the journey. They are X6 nodes kept in the draft's
// layout, never steps; a note's text is typed in the side panel, and the note shows it as it
// is typed.

import { scheduleSave } from "./autosave.js";
import { graph, selection } from "./canvas.js";
import { noteSpec } from "./cells.js";
import { page } from "./page.js";
import { freeCenter } from "./view.js";

export function addNote() {
  if (!page.editable) return false;
  const at = freeCenter();
  let n = 1;
  while (graph.getCellById(`note_${n}`)) n += 1;
  const note = graph.addNode(noteSpec({ id: `note_${n}`, x: Math.round(at.x - 90), y: Math.round(at.y - 45), text: "" }));
  selection.clean();
  selection.select(note);
  return false;
}

export function showNotePanel(note) {
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
  text.disabled = !page.editable;
  text.addEventListener("input", () => {
    note.setData({ text: text.value });
    note.attr("label/text", text.value);
    scheduleSave();
  });
  page.panel.replaceChildren(heading, hint, labelEl, text);
  text.focus();
}
