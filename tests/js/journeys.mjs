// Real inputs for the canvas's unit tests: the cart recovery starter as the server keeps it,
// the ports the server answers for its steps, and the step list's items for those types.

import { readFileSync } from "node:fs";

const STARTER = new URL("../../engine/journeys/starters/cart_recovery.json", import.meta.url);

// A fresh copy each time, so a test cannot change another's document.
export const cartRecovery = () => JSON.parse(readFileSync(STARTER, "utf8"));

// As webapp/designer/palette.ports_of answers for each step of the starter.
export const CART_RECOVERY_PORTS = {
  start: [{ name: "out", required: true }],
  wait: [{ name: "event", required: true }, { name: "timeout", required: true }],
  vip: [{ name: "true", required: true }, { name: "false", required: true }],
  call: [{ name: "out", required: true }, { name: "error", required: false }],
  mail: [{ name: "out", required: true }, { name: "error", required: false }],
  end: [],
};

// Items of webapp/designer/palette.catalogue, as the page hands them to the canvas.
const ITEMS = [
  { type: "trigger", label: "Trigger", summary: "When …", config: { event: "" }, ports: [{ name: "out", required: true }] },
  { type: "wait_for_event", label: "Wait for event", summary: "Wait for …, up to 1 day", config: { event: "", timeout: "P1D" }, ports: [{ name: "event", required: true }, { name: "timeout", required: true }] },
  { type: "condition", label: "Condition", summary: "If tier is vip", config: {}, ports: [{ name: "true", required: true }, { name: "false", required: true }] },
  { type: "split", label: "Split", summary: "Split 50% a / 50% b", config: {}, ports: [{ name: "a", required: true }, { name: "b", required: true }] },
  { type: "send", label: "Send", summary: "Send via a channel", config: {}, ports: [{ name: "out", required: true }, { name: "error", required: false }] },
  { type: "exit", label: "Exit", summary: "End the journey", config: {}, ports: [] },
];
export const byType = Object.fromEntries(ITEMS.map((item) => [item.type, item]));

export const editablePage = { editable: true, byType };
export const readOnlyPage = { editable: false, byType };

// The server's answer for a draft: the document, each step's ports and summary, the problems.
export function draftAnswer(document, summaries = {}) {
  return { revision: 3, document, ports: CART_RECOVERY_PORTS, summaries, problems: [] };
}
