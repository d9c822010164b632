// A small element builder: h("div", {class: "row", onclick: fn}, child, ...).

export function h(tag, props = {}, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "style" && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) {
        if (k.startsWith("--")) el.style.setProperty(k, v);
        else el.style[k] = v;
      }
    } else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && !tag.startsWith("svg:") && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

/** Replace an element's children; arrays are flattened and null / false skipped, as in h(). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Inline SVG icon from path data (stroke icons on a 16x16 grid). */
export function icon(d, { fill = false } = {}) {
  const svg = h("svg:svg", { viewBox: "0 0 16 16" });
  const path = h("svg:path", { d });
  if (fill) svg.setAttribute("style", "fill: currentColor; stroke: none");
  svg.appendChild(path);
  return svg;
}

/** Close a popup when the pointer goes down outside it (or Escape is pressed). */
export function dismissOnOutside(popup, anchor, onClose) {
  const down = (e) => {
    if (!popup.contains(e.target) && !(anchor && anchor.contains(e.target))) close();
  };
  const key = (e) => e.key === "Escape" && close();
  function close() {
    document.removeEventListener("pointerdown", down, true);
    document.removeEventListener("keydown", key, true);
    onClose();
  }
  setTimeout(() => {
    document.addEventListener("pointerdown", down, true);
    document.addEventListener("keydown", key, true);
  });
  return close;
}

export function formatTime(s) {
  if (!Number.isFinite(s) || s < 0) s = 0;
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return `${m}:${String(sec).padStart(2, "0")}`;
}

export function toast(message, { error = false, ms = 3800 } = {}) {
  const host = document.getElementById("toasts");
  if (!host) return;
  const el = h("div", { class: error ? "toast error" : "toast", role: error ? "alert" : "status" }, message);
  host.appendChild(el);
  setTimeout(() => el.remove(), ms);
}

/** A panel section: an uppercase title, an optional extra on the right, then the content. */
export function section(title, extra, ...children) {
  return h("section", { class: "section", dataset: { section: title } },
    h("div", { class: "section-head" }, h("span", { class: "section-title" }, title), h("span", { class: "spacer" }), extra),
    children);
}

/** A labelled control row. */
export function row(label, control) {
  return h("div", { class: "row" }, h("span", { class: "label" }, label), control);
}
