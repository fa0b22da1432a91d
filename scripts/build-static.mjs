// Copies the front-end packages the pages load from node_modules into static/vendor, builds
// the icon sprite the canvas and palette use from the icons named in icons.json, and lists the
// hashes of the stylesheets X6 inserts, which the Content-Security-Policy allows by hash.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "static", "vendor");
const files = {
  "htmx.min.js": "node_modules/htmx.org/dist/htmx.min.js",
  "pico.min.css": "node_modules/@picocss/pico/css/pico.min.css",
  "x6.min.js": "node_modules/@antv/x6/dist/x6.min.js",
  "dagre.min.js": "node_modules/@dagrejs/dagre/dist/dagre.min.js",
  "chart.umd.min.js": "node_modules/chart.js/dist/chart.umd.min.js",
  "swagger-ui-bundle.js": "node_modules/swagger-ui-dist/swagger-ui-bundle.js",
  "swagger-ui.css": "node_modules/swagger-ui-dist/swagger-ui.css",
  // Loaded by the browser tests only, to check every page for accessibility problems.
  "axe.min.js": "node_modules/axe-core/axe.min.js",
};

mkdirSync(out, { recursive: true });
for (const [name, source] of Object.entries(files)) {
  copyFileSync(join(root, source), join(out, name));
  console.log(`static/vendor/${name} <- ${source}`);
}

// One <symbol> per icon: the drawing inside each lucide SVG, under the id the pages use.
const STROKE = 'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"';
const icons = JSON.parse(readFileSync(join(root, "scripts", "icons.json"), "utf8"));
const symbols = Object.entries({ ...icons.nodes, ...icons.tools }).map(([id, name]) => {
  const svg = readFileSync(join(root, "node_modules", "lucide-static", "icons", `${name}.svg`), "utf8");
  const drawing = svg.slice(svg.indexOf(">", svg.indexOf("<svg")) + 1, svg.lastIndexOf("</svg>")).trim();
  return `<symbol id="${id}" viewBox="0 0 24 24" ${STROKE}>${drawing}</symbol>`;
});
writeFileSync(
  join(out, "icons.svg"),
  `<svg xmlns="http://www.w3.org/2000/svg">\n<!-- lucide-static icons, ISC licence -->\n${symbols.join("\n")}\n</svg>\n`,
);
console.log(`static/vendor/icons.svg <- ${symbols.length} lucide-static icons`);

// X6 puts its core and plugin CSS into <style> elements at run time; each is allowed by the
// SHA-256 of its text, checked against the bundle so a changed X6 cannot go unnoticed.
const x6 = join(root, "node_modules", "@antv", "x6", "es");
const sheets = [join(x6, "style", "raw.js")];
for (const plugin of readdirSync(join(x6, "plugin"))) {
  const sheet = join(x6, "plugin", plugin, "style", "raw.js");
  if (existsSync(sheet)) sheets.push(sheet);
}
const bundle = readFileSync(join(out, "x6.min.js"), "utf8");
const hashes = [];
for (const file of sheets) {
  const { content } = await import(pathToFileURL(file).href);
  if (!bundle.includes(JSON.stringify(content))) {
    throw new Error(`${file}: this stylesheet is not in x6.min.js as it is`);
  }
  hashes.push(`sha256-${createHash("sha256").update(content, "utf8").digest("base64")}`);
}
writeFileSync(join(out, "x6-styles.json"), `${JSON.stringify(hashes, null, 2)}\n`);
console.log(`static/vendor/x6-styles.json <- ${hashes.length} X6 stylesheet hashes`);
