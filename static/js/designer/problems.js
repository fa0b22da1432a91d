// The problems that stop the draft from being published, as the server lists them after
// every save: counted on their steps, listed beside the canvas, and holding back Publish.

import { graph, setViewData } from "./canvas.js";
import { stepName } from "./labels.js";
import { page } from "./page.js";
import { showPanel } from "./room.js";
import { focusNode } from "./view.js";

// The steps marked with problems by the last list.
const marked = new Set();

export function showProblems(problems) {
  const { problemList, publishLink, root } = page;
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
    const where = node && node.isNode() ? stepName(node, page.byType) : problem.node;
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

// The open step's form lists its problems as they were when it loaded; those fixed since
// on the canvas (an output connected, say) leave the list.
function forgetFixed(problems) {
  const body = page.panel.querySelector("[data-panel-node]");
  const list = body && body.querySelector("ul.problems");
  if (!list) return;
  const still = new Set(problems.filter((p) => p.node === body.dataset.panelNode).map((p) => p.message));
  for (const item of list.querySelectorAll("li")) {
    if (!still.has(item.textContent.trim())) item.remove();
  }
  if (!list.children.length) list.remove();
}

function showProblemList() {
  showPanel(true);
  const first = page.problemList.querySelector("button");
  if (first) first.focus();
}

export function setUpProblems() {
  // Publishing waits until the draft has no problems: the button says so and leads to them.
  const publishLink = page.publishLink;
  if (publishLink) {
    publishLink.addEventListener("click", (event) => {
      if (publishLink.getAttribute("aria-disabled") !== "true") return;
      event.preventDefault();
      showProblemList();
    });
  }
  // So does the count of problems under the journey's name.
  const problemBadge = document.getElementById("problem-badge");
  if (problemBadge) problemBadge.addEventListener("click", showProblemList);
}
