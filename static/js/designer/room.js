// The room around the canvas. The designer fills the window below the page's head; the step
// list, the details panel and the map fold away; full screen leaves only the canvas and its
// panel. Each choice is remembered in this browser.

import { addMinimap } from "./canvas.js";
import { page } from "./page.js";

// The designer fills the window below the page's head (the head's height depends on the
// journey's name and the width), so its height is measured rather than guessed.
function sizeDesigner() {
  const top = page.root.getBoundingClientRect().top + window.scrollY;
  page.root.style.setProperty("--designer-height", `${Math.max(416, Math.floor(window.innerHeight - top - 8))}px`);
}

export function fitToWindow() {
  sizeDesigner();
  window.addEventListener("resize", sizeDesigner);
  // The head may change height as the page settles (fonts, a wrapped title): follow it.
  const head = document.querySelector(".designer-head");
  if (head && window.ResizeObserver) new ResizeObserver(sizeDesigner).observe(head);
}

const remembered = (key, fallback) => {
  try { const value = localStorage.getItem(`throughline.${key}`); return value === null ? fallback : value === "1"; } catch (e) { return fallback; }
};
const remember = (key, on) => { try { localStorage.setItem(`throughline.${key}`, on ? "1" : "0"); } catch (e) { /* private mode */ } };
export const pressed = (action, on) => {
  const button = document.querySelector(`[data-action="${action}"]`);
  if (button) button.setAttribute(action === "palette" ? "aria-expanded" : "aria-pressed", String(on));
};

export function showPalette(on) {
  const palette = page.palette;
  if (!palette) return;
  palette.classList.toggle("collapsed", !on);
  pressed("palette", on);
  const button = palette.querySelector('[data-action="palette"]');
  const words = on ? "Hide the step names" : "Show the step names";
  button.title = words;
  button.setAttribute("aria-label", words);
  remember("palette", on);
}

export function showPanel(on) {
  page.root.classList.toggle("panel-closed", !on);
  pressed("panel", on);
  remember("panel", on);
}

export function showMap(on) {
  if (!page.mapBox) return;
  page.mapBox.hidden = !on;
  pressed("minimap", on);
  remember("minimap", on);
  if (on) addMinimap();
}

export function fullScreen(on) {
  document.body.classList.toggle("full-screen", on);
  pressed("full-screen", on);
  const button = document.querySelector('[data-action="full-screen"]');
  if (button) button.querySelector("use").setAttribute("href", `${page.icons}#${on ? "leave-full-screen" : "full-screen"}`);
  if (on && document.documentElement.requestFullscreen && !document.fullscreenElement) {
    document.documentElement.requestFullscreen().catch(() => {}); // the window alone will do
  } else if (!on && document.fullscreenElement) {
    document.exitFullscreen().catch(() => {});
  }
  sizeDesigner();
}

export function setUpFullScreen() {
  document.addEventListener("fullscreenchange", () => {
    if (!document.fullscreenElement && document.body.classList.contains("full-screen")) fullScreen(false);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.classList.contains("full-screen") && !document.querySelector("dialog[open]")) fullScreen(false);
  });
}

// Whether the map was shown ("1") or hidden ("0") when this browser last chose, as the page
// opened; null if it never chose.
export let mapChosen = null;

// The step list and the panel as last chosen; the map starts hidden for a journey that fits
// the view readably, unless asked for before (see openView).
export function restoreRoom() {
  showPalette(remembered("palette", true));
  showPanel(remembered("panel", true));
  try { mapChosen = localStorage.getItem("throughline.minimap"); } catch (e) { /* private mode */ }
  if (page.mapBox) { page.mapBox.hidden = mapChosen !== "1"; pressed("minimap", !page.mapBox.hidden); }
}
