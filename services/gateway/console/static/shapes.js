// Every label shape as SVG, in image pixel coordinates (the SVG's viewBox is the image).

import { s } from "./ui.js";

// COCO's compressed RLE string (pycocotools' rleFrString) or a list of counts → counts.
export function rleCounts(counts) {
  if (Array.isArray(counts)) return counts;
  const out = [];
  let p = 0;
  while (p < counts.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = counts.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (out.length > 2) x += out[out.length - 2];
    out.push(x);
  }
  return out;
}

// The mask as a PNG data URL in the class colour: RLE runs go down columns (Fortran order), alternating
// background and foreground, starting with background.
function maskImage(rle, color) {
  const [height, width] = rle.size;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
  let position = 0;
  rleCounts(rle.counts).forEach((run, i) => {
    if (i % 2 === 1) {
      for (let j = position; j < position + run; j++) {
        const pixel = ((j % height) * width + Math.floor(j / height)) * 4;
        image.data.set([r, g, b, 255], pixel);
      }
    }
    position += run;
  });
  context.putImageData(image, 0, 0);
  return canvas.toDataURL();
}

const ring = (points) => `M${points.map(([x, y]) => `${x},${y}`).join("L")}Z`;

// One object as a <g>: `cls` its label class, `skeleton` its keypoint schema (or null); `width` and
// `height` the image's (a mask covers it).
export function objectShape(object, cls, skeleton, { prediction = false, selected = false, width, height } = {}) {
  const color = cls ? cls.color : "#ff00ff";
  const shape = object.shape;
  const group = s("g", {
    class: `object ${shape.type}${prediction ? " prediction" : ""}${selected ? " selected" : ""}`,
    "data-object-id": object.id || "",
    "data-type": shape.type,
    stroke: color,
    fill: color,
  });
  const paint = { "vector-effect": "non-scaling-stroke", "stroke-width": 2 };
  const r = Math.max(2, Math.max(width, height) / 150); // points stay visible on small and large images
  if (shape.type === "bbox") {
    const [x1, y1, x2, y2] = shape.box;
    group.append(s("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1, "fill-opacity": 0.12, ...paint }));
  } else if (shape.type === "polygon") {
    const d = [shape.points, ...(shape.holes || [])].map(ring).join(" ");
    group.append(s("path", { d, "fill-rule": "evenodd", "fill-opacity": 0.25, ...paint }));
  } else if (shape.type === "polyline") {
    group.append(s("polyline", { points: shape.points.map((p) => p.join(",")).join(" "), fill: "none", ...paint }));
  } else if (shape.type === "point") {
    group.append(s("circle", { cx: shape.point[0], cy: shape.point[1], r, class: "point", ...paint }));
  } else if (shape.type === "keypoints") {
    const points = shape.keypoints;
    for (const [a, b] of (skeleton && skeleton.skeleton) || []) {
      if (points[a] && points[b] && points[a][2] > 0 && points[b][2] > 0) {
        group.append(s("line", { class: "bone", x1: points[a][0], y1: points[a][1], x2: points[b][0], y2: points[b][1], ...paint }));
      }
    }
    points.forEach(([x, y, visibility], i) => {
      if (visibility > 0) {
        const name = skeleton ? skeleton.keypoints[i] : String(i);
        const dot = s("circle", { class: "keypoint", cx: x, cy: y, r, "fill-opacity": visibility === 2 ? 1 : 0.3, ...paint });
        dot.append(s("title", {}, name));
        group.append(dot);
      }
    });
  } else if (shape.type === "mask") {
    const href = shape.rle ? maskImage(shape.rle, color) : `data:image/png;base64,${shape.png}`;
    group.append(s("image", { class: "mask", href, x: 0, y: 0, opacity: 0.45, preserveAspectRatio: "none", width, height }));
  }
  return group;
}
