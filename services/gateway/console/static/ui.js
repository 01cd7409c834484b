// Small DOM helpers shared by every page.

// h("button#save.primary", {onclick}, "Save") → <button id="save" class="primary">Save</button>
export function h(tag, props = {}, ...children) {
  const [name, ...parts] = tag.split(/(?=[.#])/);
  const node = document.createElement(name);
  for (const part of parts) {
    if (part[0] === "#") node.id = part.slice(1);
    else node.classList.add(part.slice(1));
  }
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && key !== "list" && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function s(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// Pages load asynchronously: one still loading when the user has moved on must not draw over the new
// one. Each route takes a ticket; `show` refuses (with StaleRoute, which `attempt` ignores) a page whose
// ticket is no longer the current one.
let currentTicket = 0;
export class StaleRoute extends Error {}
export const nextTicket = () => ++currentTicket;
export const ticket = () => currentTicket;

export function show(pageTicket, ...nodes) {
  if (pageTicket !== currentTicket) throw new StaleRoute();
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
  return main;
}

// The banner at the top: errors from the API, and confirmations. `actions` are buttons it offers.
export function message(text, { kind = "error", actions = [] } = {}) {
  const banner = document.getElementById("message");
  banner.className = kind;
  banner.replaceChildren(h("span.text", {}, text), ...actions, h("button.close", { onclick: clearMessage, title: "Dismiss" }, "×"));
  banner.hidden = false;
}

export function clearMessage() {
  document.getElementById("message").hidden = true;
}

// Runs an async action and shows its failure in the banner instead of leaving the page half-drawn.
export async function attempt(action) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof StaleRoute)) message(error.message || String(error));
    return undefined;
  }
}

export const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en"));
