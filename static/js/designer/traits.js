// The simulation's sample customer: its traits as a table of names and values (numbers and
// true/false taken as such), or the same as JSON for those who prefer it.

import { parseTraits, traitsFromRows } from "./simulation-input.js";

function cell(child) {
  const td = document.createElement("td");
  td.append(child);
  return td;
}

function traitRow(name, value) {
  const row = document.createElement("tr");
  const nameBox = Object.assign(document.createElement("input"), { type: "text", value: name, className: "sim-trait-name", autocomplete: "off", spellcheck: false });
  const valueBox = Object.assign(document.createElement("input"), { type: "text", value, className: "sim-trait-value", autocomplete: "off" });
  const remove = Object.assign(document.createElement("button"), { type: "button", className: "rb-remove sim-trait-remove", textContent: "✕" });
  row.append(cell(nameBox), cell(valueBox), cell(remove));
  return row;
}

// Sets up the table and its JSON twin; answers the function that reads the traits (and
// throws an Error saying what is wrong with them), or null on a page without them.
export function setUpTraits() {
  const traitRows = document.getElementById("sim-trait-rows");
  const traitsJson = document.getElementById("sim-traits-json");
  const traitsMode = document.getElementById("sim-traits-mode");
  const addTrait = document.getElementById("sim-add-trait");
  if (!traitRows) return null;

  const numberTraits = () => {
    [...traitRows.rows].forEach((row, index) => {
      row.querySelector(".sim-trait-name").setAttribute("aria-label", `Name of trait ${index + 1}`);
      row.querySelector(".sim-trait-value").setAttribute("aria-label", `Value of trait ${index + 1}`);
      const remove = row.querySelector(".sim-trait-remove");
      remove.setAttribute("aria-label", `Remove trait ${index + 1}`);
      remove.title = "Remove this trait";
    });
  };
  const showTraits = (traits) => {
    const rows = Object.entries(traits).map(([name, value]) =>
      traitRow(name, typeof value === "string" ? value : JSON.stringify(value)));
    traitRows.replaceChildren(...(rows.length ? rows : [traitRow("", "")]));
    numberTraits();
  };
  const tableTraits = () => traitsFromRows([...traitRows.rows].map((row) => [
    row.querySelector(".sim-trait-name").value,
    row.querySelector(".sim-trait-value").value,
  ]));
  const jsonTraits = () => parseTraits(traitsJson.value);

  showTraits(JSON.parse(traitRows.closest("[data-traits]").dataset.traits));
  addTrait.addEventListener("click", () => {
    const row = traitRow("", "");
    traitRows.append(row);
    numberTraits();
    row.querySelector("input").focus();
  });
  traitRows.addEventListener("click", (event) => {
    const remove = event.target.closest(".sim-trait-remove");
    if (!remove) return;
    const row = remove.closest("tr");
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    if (!traitRows.rows.length) traitRows.append(traitRow("", ""));
    numberTraits();
    (next && next.isConnected ? next.querySelector("input") : addTrait).focus();
  });
  // Table and JSON show the same traits: switching carries them over.
  traitsMode.addEventListener("click", () => {
    const error = document.getElementById("sim-error");
    error.hidden = true;
    const table = document.getElementById("sim-trait-table");
    try {
      if (traitsJson.hidden) traitsJson.value = JSON.stringify(tableTraits(), null, 2);
      else showTraits(jsonTraits());
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      return;
    }
    const toJson = traitsJson.hidden;
    traitsJson.hidden = !toJson;
    table.hidden = toJson;
    addTrait.hidden = toJson;
    traitsMode.textContent = toJson ? "Edit the traits in a table" : "Edit the traits as JSON";
    (toJson ? traitsJson : traitRows.querySelector("input")).focus();
  });
  return () => (traitsJson.hidden ? tableTraits() : jsonTraits());
}
