// The side panel. The step's form comes from the server (htmx); saving it answers with the
// saved draft (the `draftSaved` event). Nothing typed is lost: a form changed in the panel and
// not saved yet is saved when the marketer moves on to another step or to the settings; if it
// cannot be saved (a field is wrong), the panel stays on it with the fields marked. Leaving the
// page asks first.

import { rememberDraft, showSaved, whenSaved } from "./autosave.js";
import { element } from "./cards.js";
import { graph, isNote, quietly, selection } from "./canvas.js";
import { showNotePanel } from "./notes.js";
import { page, setStatus } from "./page.js";
import { showPanel } from "./room.js";

// Helpers of the forms the server sends (message templates and their previews). The
// customer picked for the previews is kept under `sampleKey` (see setUpPanel).
function setUpFormHelpers(panel, sampleKey) {
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
  panel.addEventListener("change", (event) => {
    const picked = event.target.closest && event.target.closest("select.sample-customer");
    if (!picked) return;
    try {
      if (picked.value) sessionStorage.setItem(sampleKey, picked.value); else sessionStorage.removeItem(sampleKey);
    } catch (e) { /* private mode: the choice lasts as long as the form */ }
  });
}

export function setUpPanel() {
  const { panel, root } = page;
  // The step or note whose form the panel shows, and whether that form has changes not saved.
  let panelNode = null;
  let panelDirty = false;
  const panelIntro = panel.innerHTML;
  // A removed step or note takes its form with it: the panel shows its opening text again.
  graph.on("cell:removed", ({ cell }) => {
    if (cell.id !== panelNode) return;
    panelNode = null;
    panel.innerHTML = panelIntro;
  });

  const markChanged = (event) => {
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
  };
  // The customer picked for the previews stays picked on the other steps of the journey,
  // for as long as the tab is open.
  const sampleKey = `throughline.preview-customer.${window.location.pathname}`;
  const sampleCustomer = () => {
    try { return sessionStorage.getItem(sampleKey) || ""; } catch (e) { return ""; }
  };
  setUpFormHelpers(panel, sampleKey);
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
  const leavePanel = async () => {
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
  };
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
    // Another step was chosen while the canvas saved: its form is the one to show, and a
    // late answer for this one must not replace it (and what is being typed in it).
    if (panelNode !== node.id) return;
    let url = panel.dataset.panelUrl.replace("__node__", encodeURIComponent(node.id));
    const previewFor = sampleCustomer();
    if (previewFor) url += `?customer=${encodeURIComponent(previewFor)}`;
    if (!root.dataset.version) htmx.ajax("GET", url, { target: "#node-panel", swap: "innerHTML" });
  });
  graph.on("blank:click", () => { panelNode = null; });
  // The journey's settings share the panel: a step clicked afterwards loads its form again.
  const settingsButton = document.getElementById("journey-settings");
  if (settingsButton) settingsButton.addEventListener("click", () => { panelNode = null; selection.clean(); });

  // The canvas saved (a step moved, arranged, connected) while a form was open: the form goes
  // on from the new revision, or saving it would be refused as a change on an older draft.
  document.body.addEventListener("canvasSaved", (event) => {
    const { from, to } = event.detail;
    const field = panel.querySelector('form[hx-post] input[type="hidden"][name$="revision"]');
    if (field && String(field.value) === String(from)) field.value = String(to);
  });

  // A form saved in the panel: the server's draft, its revision, the step's config and label.
  document.body.addEventListener("draftSaved", (event) => {
    const answer = event.detail;
    rememberDraft(answer.revision, answer.document);
    quietly(() => {
      for (const item of answer.document.nodes) {
        const node = graph.getCellById(item.id);
        if (node) node.setData({ config: item.config, label: item.label || "" }, { overwrite: false, deep: false });
      }
    });
    showSaved(answer);
  });
}
