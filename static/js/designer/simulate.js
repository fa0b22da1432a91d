// Simulation. The server runs the draft on a virtual clock for a sample customer and the
// events typed for it; the canvas lists the steps taken and the messages sent, and lights
// the path step by step.

import { whenSaved } from "./autosave.js";
import { graph, setViewData } from "./canvas.js";
import { edgeLabel, stepName } from "./labels.js";
import { page } from "./page.js";
import { readEvents, simulationError } from "./simulation-input.js";
import { setUpTraits } from "./traits.js";
import { focusNode } from "./view.js";

// The steps lit so far, and the timer lighting the next.
let lit = [];
let lighting = null;

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

const nameOf = (id) => {
  const node = graph.getCellById(id);
  return node ? stepName(node, page.byType) : id;
};

// How the sample customer's time in the journey ends, in words.
const ENDINGS = {
  completed: "Ends completed",
  exited: "Ends exited: an exit rule took them out",
  failed: "Ends failed",
  waiting: "Still in the journey, waiting",
  not_entered: "Did not enter the journey",
};

function showResult(result) {
  const box = document.getElementById("sim-result");
  box.replaceChildren();
  const final = document.createElement("p");
  const ending = document.createElement("strong");
  ending.textContent = ENDINGS[result.final] || `Ends ${result.final}`;
  const steps = result.steps.length;
  const sends = result.sends.length;
  final.append(ending, `, ${steps} step${steps === 1 ? "" : "s"}, ${sends} message${sends === 1 ? "" : "s"}.`);
  box.append(final);
  if (result.final === "not_entered" && steps === 0) {
    // No event met the trigger: say what it asks for, which the events typed did not have.
    const trigger = graph.getNodes().find((node) => (node.getData() || {}).type === "trigger");
    const why = document.createElement("p");
    why.className = "muted";
    why.textContent = `No event met the trigger${trigger ? `: ${nameOf(trigger.id)}` : ""}. Add an event, or details that meet it.`;
    box.append(why);
  }
  const list = document.createElement("ol");
  list.className = "sim-steps";
  result.steps.forEach((step, index) => {
    const li = document.createElement("li");
    li.dataset.step = index;
    const reason = step.detail && (step.detail.reason || step.detail.port || step.detail.branch || "");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    // The way the step went on, as its edge says it on the canvas ("went on", "yes").
    const node = graph.getCellById(step.node);
    const way = step.outcome === "out" ? "went on" : (node && edgeLabel(node, step.outcome)) || step.outcome;
    button.textContent = `${nameOf(step.node)}: ${way}`;
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
    title.textContent = `${nameOf(send.node)} → ${send.channel}`;
    const body = document.createElement("pre");
    body.textContent = JSON.stringify(send.message, null, 2);
    card.append(title, body);
    box.append(card);
  }
  light(result.steps);
}

export function setUpSimulation() {
  const readTraits = setUpTraits();
  const sim = document.getElementById("simulate");
  if (!sim) return;
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
      headers: { "Content-Type": "application/json", "X-CSRFToken": page.csrf },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
    if (!response.ok) {
      error.textContent = simulationError(answer);
      error.hidden = false;
      return;
    }
    showResult(answer);
  });
}
