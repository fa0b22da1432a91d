// The canvas's keys (the Shortcuts menu lists them). Those without Ctrl work only while the
// canvas has the focus (see the keyboard's guard in canvas.js). The arrow keys go to the
// nearest step that way (from the selected step, else from the trigger); Enter opens the
// selected step's form with its first field focused.

import { autoLayout } from "./arrange.js";
import { isNote, keyboard, selection, steps } from "./canvas.js";
import { openConnect } from "./connect.js";
import { copy, paste, redo, removeSelection, selectAll, undo } from "./editing.js";
import { stepName } from "./labels.js";
import { announce, page } from "./page.js";
import { DIRECTIONS, nearestThatWay } from "./placing.js";
import { fullScreen, showPanel } from "./room.js";
import { bringIntoView, fit, zoom } from "./view.js";

const selectedSteps = () => selection.getSelectedCells().filter((cell) => cell.isNode() && !isNote(cell));

function goTo(direction) {
  const all = steps();
  if (!all.length) return false;
  const from = selectedSteps()[0];
  if (!from) {
    const start = all.find((node) => node.getData().type === "trigger") || all[0];
    selectStep(start);
    return false;
  }
  const others = all.filter((node) => node !== from);
  const best = nearestThatWay(from.getBBox().getCenter(), others.map((node) => node.getBBox().getCenter()), direction);
  if (best >= 0) selectStep(others[best]);
  return false;
}

function selectStep(node) {
  selection.clean();
  selection.select(node);
  bringIntoView(node);
  announce(`${stepName(node, page.byType)} selected: Enter opens it, arrows go to the next step.`);
}

function openSelected() {
  const chosen = selectedSteps();
  if (chosen.length !== 1) return true; // let Enter do what it does elsewhere
  const panel = page.panel;
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

export function setUpKeys() {
  keyboard.bindKey(["delete", "backspace"], removeSelection);
  keyboard.bindKey(["ctrl+z", "meta+z"], undo);
  keyboard.bindKey(["ctrl+shift+z", "meta+shift+z", "ctrl+y"], redo);
  keyboard.bindKey(["ctrl+c", "meta+c"], copy);
  keyboard.bindKey(["ctrl+v", "meta+v"], paste);
  keyboard.bindKey(["ctrl+a", "meta+a"], selectAll);
  keyboard.bindKey(["=", "+"], () => zoom(0.1));
  keyboard.bindKey(["-"], () => zoom(-0.1));
  keyboard.bindKey(["shift+1"], fit);
  keyboard.bindKey(["shift+l"], () => autoLayout());
  keyboard.bindKey(["c"], () => { openConnect(); return false; });
  for (const direction of Object.keys(DIRECTIONS)) keyboard.bindKey([direction], () => goTo(direction));
  keyboard.bindKey(["enter"], openSelected);
  keyboard.bindKey(["f"], () => { fullScreen(!document.body.classList.contains("full-screen")); return false; });
}
