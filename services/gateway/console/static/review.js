// The work queues: take the next sample to label or to review; a reviewer then accepts or rejects it (a
// rejection's comment becomes an issue on the sample, where the labeler sees it).

import { api, post } from "./api.js";
import { attempt, h, message } from "./ui.js";

const LABELSET = "ground-truth";

const EMPTY = { label: "Nothing to label: every sample's label is done or taken.", review: "Nothing to review: no labelled sample is waiting." };

// `queue` is "label" or "review".
export async function nextFromQueue(projectId, queue) {
  const reply = await attempt(() => post(`/v1/projects/${projectId}/queues/${queue}/next`, { labelset: LABELSET }));
  if (!reply) return;
  if (!reply.assignment) return message(EMPTY[queue], { kind: "info" });
  location.hash = `#/p/${projectId}/s/${reply.assignment.sample_id}?${queue === "review" ? "review=1" : "queue=label"}`;
}

// The accept / reject panel of the sample view; `editor` is the sample's Editor.
export function reviewPanel(editor) {
  const comment = h("textarea#review-comment", { placeholder: "comment (why it is rejected)", rows: 3 });
  const base = `${editor.ctx.base}/samples/${editor.sample.id}`;
  const decide = (status) =>
    attempt(async () => {
      if (status === "REJECTED" && comment.value.trim()) {
        await post(`${base}/issues`, { description: comment.value.trim(), labelset: LABELSET });
      }
      editor.label = await api("PATCH", `${base}/labels/${LABELSET}`, { status, version: editor.label.version });
      editor.status.textContent = editor.label.status;
      editor.version.textContent = `v${editor.label.version}`;
      editor.issues.reload();
      message(`${status === "REJECTED" ? "Rejected" : "Accepted"}: the label is ${editor.label.status}.`, {
        kind: "info",
        actions: [h("button#review-next", { onclick: () => nextFromQueue(editor.ctx.project.id, "review") }, "Next to review")],
      });
    });
  return h(
    "section.review",
    {},
    h("h2", {}, "Review"),
    comment,
    h("div.row", {}, h("button#accept.primary", { onclick: () => decide("REVIEWED") }, "Accept"), h("button#reject.danger", { onclick: () => decide("REJECTED") }, "Reject")),
  );
}
