// Parses a Mermaid file with Mermaid's own parser (under jsdom); exit 1 with the parser's message if it does not parse.
// Usage: node check.mjs FILE
import { JSDOM } from "jsdom";
import fs from "fs";
const dom = new JSDOM("<!DOCTYPE html><body></body>", { pretendToBeVisual: true });
globalThis.window = dom.window; globalThis.document = dom.window.document;
globalThis.DOMPurify = undefined;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });
const text = fs.readFileSync(process.argv[2], "utf8");
try {
  const r = await mermaid.parse(text);
  console.log("parsed", JSON.stringify(r));
} catch (e) { console.error("PARSE ERROR", e.message || e); process.exit(1); }
