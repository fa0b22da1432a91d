// The canvas's modules as the browser loads them, without a bundler: every import resolves,
// importing does nothing but define, and the pure modules stay away from the page and X6.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const DIR = new URL("../../static/js/designer/", import.meta.url);
const PURE = ["cells.js", "document.js", "figures.js", "labels.js", "placing.js", "ports.js", "routes.js", "simulation-input.js"];

const modules = readdirSync(DIR).filter((name) => name.endsWith(".js"));
const source = (name) => readFileSync(new URL(name, DIR), "utf8");
const imports = (name) => [...source(name).matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);

test("every module imports its siblings by relative URLs that exist", () => {
  assert.ok(modules.includes("main.js"));
  for (const name of modules) {
    for (const path of imports(name)) {
      assert.match(path, /^\.\/[\w-]+\.js$/, `${name} imports ${path}`);
      assert.ok(existsSync(new URL(path, DIR)), `${name} imports ${path}, which is not there`);
    }
  }
});

test("pure modules import only pure modules and use neither the page nor X6", () => {
  for (const name of PURE) {
    for (const path of imports(name)) assert.ok(PURE.includes(path.slice(2)), `${name} imports ${path}`);
    const code = source(name).replace(/\/\/.*$/gm, "");
    assert.doesNotMatch(code, /(?<![.\w$])(document|window|X6|dagre|htmx|localStorage|sessionStorage)\b/, name);
  }
});

test("the whole graph of modules links, and on a page without the canvas sets nothing up", async () => {
  let asked = null;
  globalThis.document = { getElementById: (id) => { asked = id; return null; } };
  globalThis.window = {};
  try {
    await import(new URL("main.js", DIR));
  } finally {
    delete globalThis.document;
    delete globalThis.window;
  }
  assert.equal(asked, "designer");
});
