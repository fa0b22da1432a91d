// Each step is an HTML card: its type's icon and its label (or type), what it does, and on a
// published journey its figures; problems show as a badge. Figures, problems and the
// simulation's light are kept in the node's data, outside the document and undo.

import { count } from "./figures.js";
import { page } from "./page.js";

export function element(tag, className, text) {
  const found = document.createElement(tag);
  if (className) found.className = className;
  if (text !== undefined) found.textContent = text;
  return found;
}

function icon(name, className) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", className);
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `${page.icons}#${name}`);
  svg.append(use);
  return svg;
}

export function card(cell) {
  const data = cell.getData() || {};
  const item = page.byType[data.type];
  const box = element("div", `step-card kind-${data.type}`);
  if (data.problems && data.problems.length) box.classList.add("has-problems");
  if (data.lit) box.classList.add("lit");
  const head = element("div", "step-head");
  head.append(icon(data.type, "step-icon"), element("span", "step-title", data.label || (item ? item.label : data.type)));
  if (data.problems && data.problems.length) {
    const badge = element("span", "step-problems");
    badge.title = data.problems.join("\n");
    badge.append(icon("problem", "badge-icon"), element("span", "", String(data.problems.length)));
    badge.append(element("span", "visually-hidden", data.problems.length === 1 ? " problem" : " problems"));
    head.append(badge);
  }
  const summary = element("p", "step-summary", data.summary || "");
  box.title = `${data.label ? data.label + "\n" : ""}${data.summary || ""}`;
  box.append(head, summary);
  const f = data.figures;
  if (f) {
    // Arrivals in the head, with their share of the arrivals at the steps before when some
    // were lost on the way (all of them, 100%, would only take room from the step's name);
    // below, where they are now, or for a send what became of its messages.
    box.classList.add("has-figures");
    const arrived = element("span", "step-in", `${count(f.entered)} in`);
    const shared = f.share !== null && f.share !== undefined;
    if (shared && f.share !== 100) arrived.append(element("span", "share", ` · ${f.share}%`));
    if (shared) arrived.title = `${f.share}% of those who reached the step before`;
    head.append(arrived);
    // A send whose messages printed a name empty (a typo, a trait some customers lack)
    // says so in its head: how many, and in its title which names.
    const empty = Object.entries(f.empty || {});
    if (empty.length) {
      const words = empty.map(([name, n]) =>
        `${count(n)} message${n === 1 ? "" : "s"} had an empty [${name.split(".").pop()}] in the last 7 days`);
      const most = Math.max(...empty.map(([, n]) => n));
      const badge = element("span", "step-empty");
      badge.title = words.join("\n");
      badge.append(icon("problem", "badge-icon"), element("span", "", `${count(most)} empty`));
      badge.append(element("span", "visually-hidden", `: ${words.join("; ")}`));
      head.append(badge);
    }
    const line = element("p", "step-figures");
    if (data.type === "send") {
      const d = f.deliveries || {};
      line.append(
        element("span", `fig ${d.delivered ? "good" : ""}`, `${count(d.delivered)} delivered`),
        element("span", `fig ${d.suppressed ? "warn" : ""}`, `${count(d.suppressed)} suppressed`),
        element("span", `fig ${d.failed ? "bad" : ""}`, `${count(d.failed)} failed`),
      );
    } else if (data.type !== "exit") {
      line.append(
        element("span", "fig", `${count(f.waiting)} waiting`),
        element("span", "fig", `${count(f.completed)} went on`),
      );
      if (f.failed) line.append(element("span", "fig bad", `${count(f.failed)} failed`));
    }
    box.append(line);
  }
  return box;
}
