/**
 * fp8kit in the browser: open a checkpoint (local files, or an address read with Range requests;
 * `?url=<address>` opens one on load, so a link can be shared) and see what inspect, lint, audit and
 * the report show; explore the formats.
 */

import { blockGrid } from "./block-grid.js";
import { showCheckpoint } from "./checkpoint.js";
import { h, messageOf } from "./dom.js";
import { formatExplorer } from "./explorer.js";
import { type Opened, openAddress, openDropped, openFiles } from "./open.js";

const $ = <T extends HTMLElement>(id: string) => document.querySelector<T>(`[data-testid="${id}"]`)!;

const view = $("checkpoint");
const status = $("open-status");
let generation = 0;

function setStatus(state: "idle" | "loading" | "ready" | "error", text: string) {
  status.dataset.state = state;
  status.textContent = text;
}

/** Opens and shows a checkpoint; a newer call makes an older one stop writing to the page. */
async function show(open: () => Promise<Opened | null>) {
  const mine = ++generation;
  const current = () => mine === generation;
  setStatus("loading", "opening…");
  try {
    const opened = await open();
    if (!current()) return;
    if (!opened) {
      setStatus("error", "nothing to open");
      return;
    }
    setStatus("loading", `reading ${opened.address ?? opened.dir.name}…`);
    await showCheckpoint(view, opened, current);
    if (!current()) return;
    if (view.dataset.state === "ready") setStatus("ready", "done");
    else setStatus("error", $("inspect-status").textContent || "could not read the checkpoint");
  } catch (e) {
    if (current()) {
      setStatus("error", messageOf(e));
      view.replaceChildren();
    }
  }
}

/** Keeps `?url=` in the address bar in step with what is shown (a link to share). */
function setUrlParameter(address: string | null) {
  const u = new URL(window.location.href);
  if (address) u.searchParams.set("url", address);
  else u.searchParams.delete("url");
  window.history.replaceState(null, "", u);
}

function openLocal(files: FileList | null) {
  if (!files || files.length === 0) return;
  setUrlParameter(null);
  const list = Array.from(files);
  void show(async () => openFiles(list));
}

function openRemote(address: string) {
  const a = address.trim();
  if (!a) return;
  setUrlParameter(a);
  const token = $<HTMLInputElement>("open-token").value.trim();
  void show(() => openAddress(a, token || undefined));
}

const folderInput = $<HTMLInputElement>("open-folder");
const filesInput = $<HTMLInputElement>("open-files");
folderInput.addEventListener("change", () => openLocal(folderInput.files));
filesInput.addEventListener("change", () => openLocal(filesInput.files));

const urlInput = $<HTMLInputElement>("open-url");
$<HTMLFormElement>("open-url-form").addEventListener("submit", (e) => {
  e.preventDefault();
  openRemote(urlInput.value);
});

const drop = $("drop-zone");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const data = e.dataTransfer;
  if (!data) return;
  setUrlParameter(null);
  void show(() => openDropped(data));
});

$("explorer").append(
  ...formatExplorer(),
  h("h3", {}, "A block under each scale rule"),
  h(
    "p",
    { class: "what" },
    "A block of 32 numbers quantized with every scale rule: grey ticks are the values the block's scale makes representable, hollow dots the block, red dots where each value lands. Edit the numbers (then leave the box) or randomize them.",
  ),
  blockGrid(() => import("@observablehq/plot")),
);

const initial = new URLSearchParams(window.location.search).get("url");
if (initial) {
  urlInput.value = initial;
  openRemote(initial);
} else setStatus("idle", "nothing open yet");
