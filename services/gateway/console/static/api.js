// The only way the console talks to Loupe: the public REST API and the SSE stream, with the API key the
// user typed (kept in sessionStorage, so it is gone when the tab closes).

const KEY = "loupe.apiKey";

export const apiKey = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

// An answer of the API that is not a success, with a sentence a person can act on.
export class ApiError extends Error {
  constructor(status, problem) {
    super(describe(status, problem));
    this.status = status;
    this.problem = problem;
  }
}

const FALLBACK = {
  403: "Your role on this project does not allow this.",
  404: "Not found: it may have been deleted, or you may have no access to it.",
  409: "Someone changed this since you loaded it.",
  413: "The request is too large for the server.",
};

function describe(status, problem) {
  const detail = problem && problem.detail;
  if (status === 401) return `Your API key was not accepted${detail ? ` (${detail})` : ""}. Sign in again.`;
  if (status >= 500) return `The server failed (${status})${detail ? `: ${detail}` : ""}. Try again in a moment.`;
  const base = detail || FALLBACK[status] || `The request failed (${status}).`;
  return problem && problem.path ? `${base} (at ${problem.path})` : base;
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${apiKey.get() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, { detail: `The server cannot be reached (${error.message}).` });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { detail: text.slice(0, 200) };
  }
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new CustomEvent("loupe:unauthenticated"));
    throw new ApiError(response.status, parsed);
  }
  return parsed;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});

// A project's events as they happen. EventSource cannot send a header, so the stream is read with fetch;
// `onEvent(type, envelope)` gets each one. Reconnects after a drop with Last-Event-ID. Returns a stop function.
export function followEvents(projectId, onEvent) {
  const controller = new AbortController();
  let lastId = null;
  async function run() {
    while (!controller.signal.aborted) {
      try {
        const headers = { Authorization: `Bearer ${apiKey.get() || ""}` };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch(`/v1/projects/${projectId}/events`, { headers, signal: controller.signal });
        if (!response.ok) return;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const event = parseEvent(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (event) {
              lastId = event.id;
              onEvent(event.type, event.data);
            }
          }
        }
      } catch {
        if (controller.signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  run();
  return () => controller.abort();
}

function parseEvent(block) {
  const event = { id: null, type: "message", data: "" };
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") event.id = value;
    else if (field === "event") event.type = value;
    else if (field === "data") event.data += value;
  }
  if (!event.data) return null;
  try {
    event.data = JSON.parse(event.data);
  } catch {
    /* keep the text */
  }
  return event;
}
