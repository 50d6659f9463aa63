// Parses Mermaid files with Mermaid's own parser (under jsdom): one line per file, "FILE: parsed ..." or
// "FILE: PARSE ERROR ..."; exit 1 if any does not parse. Many files per run: loading Mermaid is the slow part.
// Usage: node check.mjs FILE...
import { JSDOM } from "jsdom";
import fs from "fs";
const dom = new JSDOM("<!DOCTYPE html><body></body>", { pretendToBeVisual: true });
globalThis.window = dom.window; globalThis.document = dom.window.document;
globalThis.DOMPurify = undefined;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });
let failed = false;
for (const file of process.argv.slice(2)) {
  try {
    const r = await mermaid.parse(fs.readFileSync(file, "utf8"));
    console.log(`${file}: parsed`, JSON.stringify(r));
  } catch (e) { console.log(`${file}: PARSE ERROR`, String(e.message || e).replace(/\n/g, " ")); failed = true; }
}
process.exit(failed ? 1 : 0);
