// Reusable controls: segmented choice, switch, slider, the three-handle stage-bounds slider.
// Each returns {el, set(...)}; `set` updates the display without firing callbacks.

import { h } from "./dom.js";

/** A row of mutually exclusive buttons. options: [{value, label, title?}]. */
export function segmented(options, onChange, { compact = false } = {}) {
  let current;
  const buttons = options.map((o) =>
    h("button", {
      type: "button",
      title: o.title || null,
      dataset: { value: String(o.value) },
      onclick: () => {
        if (o.value === current) return;
        set(o.value);
        onChange(o.value);
      },
    }, o.label),
  );
  const el = h("div", { class: compact ? "seg compact" : "seg", role: "radiogroup" }, buttons);
  function set(value) {
    current = value;
    buttons.forEach((b, i) => {
      b.classList.toggle("on", options[i].value === value);
      b.setAttribute("aria-checked", options[i].value === value ? "true" : "false");
    });
  }
  function setDisabled(disabled) {
    buttons.forEach((b) => (b.disabled = disabled));
  }
  return { el, set, setDisabled };
}

/** An on/off switch. */
export function toggleSwitch(onChange, title = "") {
  let on = false;
  const el = h("button", {
    type: "button",
    class: "switch",
    role: "switch",
    title,
    onclick: () => {
      set(!on);
      onChange(on);
    },
  });
  function set(value) {
    on = !!value;
    el.classList.toggle("on", on);
    el.setAttribute("aria-checked", on ? "true" : "false");
  }
  return { el, set };
}

function valueFromPointer(track, e, min, max, step) {
  const r = track.getBoundingClientRect();
  const f = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
  const raw = min + f * (max - min);
  return step ? Math.round(raw / step) * step : raw;
}

/** A horizontal slider. onInput(value) while dragging, onChange(value) at release. */
export function slider({ min, max, step = 0, value = min, onInput = () => {}, onChange = () => {}, fill = true, label }) {
  const track = h("div", { class: "track" });
  const fillEl = h("div", { class: "fill" });
  const thumb = h("div", { class: "thumb" });
  const el = h("div", { class: "slider", role: "slider", "aria-valuemin": min, "aria-valuemax": max, "aria-label": label || null, tabindex: 0 },
    track, fill ? fillEl : null, thumb);
  let current = value;
  function place() {
    const f = (current - min) / (max - min);
    thumb.style.left = `${f * 100}%`;
    fillEl.style.left = "0";
    fillEl.style.width = `${f * 100}%`;
    el.setAttribute("aria-valuenow", String(current));
  }
  el.addEventListener("pointerdown", (e) => {
    el.setPointerCapture(e.pointerId);
    thumb.classList.add("dragging");
    current = valueFromPointer(el, e, min, max, step);
    place();
    onInput(current);
    const move = (ev) => {
      current = valueFromPointer(el, ev, min, max, step);
      place();
      onInput(current);
    };
    const up = () => {
      thumb.classList.remove("dragging");
      el.removeEventListener("pointermove", move);
      el.removeEventListener("pointerup", up);
      el.removeEventListener("pointercancel", up);
      onChange(current);
    };
    el.addEventListener("pointermove", move);
    el.addEventListener("pointerup", up);
    el.addEventListener("pointercancel", up);
  });
  el.addEventListener("keydown", (e) => {
    const d = step || (max - min) / 100;
    if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      current = Math.min(max, Math.max(min, current + (e.key === "ArrowRight" ? d : -d)));
      place();
      onInput(current);
      onChange(current);
      e.preventDefault();
    }
  });
  function set(v) {
    current = Math.min(max, Math.max(min, v));
    place();
  }
  set(value);
  return { el, set, get: () => current };
}

/**
 * The stage-bounds slider: three handles left <= home <= right on [min, max], with a zero tick.
 * onInput({left, home, right}) while dragging, onChange(...) at release.
 */
export function stageSlider({ min, max, step = 0.5, onInput = () => {}, onChange = () => {} }) {
  const track = h("div", { class: "track" });
  const fillEl = h("div", { class: "fill" });
  const zero = h("div", { class: "tick" });
  const thumbs = {
    left: h("div", { class: "thumb", title: "stage left: strength at position 0" }),
    home: h("div", { class: "thumb home", title: "home: strength at rest" }),
    right: h("div", { class: "thumb", title: "stage right: strength at position 1" }),
  };
  const el = h("div", { class: "slider stage-slider", "aria-label": "stage bounds" }, track, zero, fillEl, thumbs.left, thumbs.right, thumbs.home);
  const valuesEl = {
    left: h("span"),
    home: h("span", { class: "home-v" }),
    right: h("span"),
  };
  const values = h("div", { class: "slider-values" }, valuesEl.left, valuesEl.home, valuesEl.right);
  const wrap = h("div", {}, el, values);
  let v = { left: -30, home: 0, right: 30 };
  const frac = (x) => ((x - min) / (max - min)) * 100;
  const fmt = (x) => (x > 0 ? "+" : "") + (Math.round(x * 10) / 10).toString();
  function place() {
    for (const k of ["left", "home", "right"]) {
      thumbs[k].style.left = `${frac(v[k])}%`;
      valuesEl[k].textContent = fmt(v[k]);
    }
    zero.style.left = `${frac(0)}%`;
    fillEl.style.left = `${frac(v.left)}%`;
    fillEl.style.width = `${frac(v.right) - frac(v.left)}%`;
  }
  el.addEventListener("pointerdown", (e) => {
    const x = valueFromPointer(el, e, min, max, step);
    // Grab the nearest handle; on a tie (stacked handles) prefer the one the drag direction frees.
    const order = ["home", "left", "right"];
    let which = order.reduce((best, k) => (Math.abs(v[k] - x) < Math.abs(v[best] - x) ? k : best), "home");
    if (Math.abs(v[which] - x) > (max - min) * 0.06) {
      which = x < v.home ? "left" : "right";
    }
    el.setPointerCapture(e.pointerId);
    thumbs[which].classList.add("dragging");
    const apply = (ev) => {
      const nx = valueFromPointer(el, ev, min, max, step);
      if (which === "left") v.left = Math.min(nx, v.home);
      else if (which === "right") v.right = Math.max(nx, v.home);
      else v.home = Math.min(Math.max(nx, v.left), v.right);
      place();
      onInput({ ...v });
    };
    apply(e);
    const up = () => {
      thumbs[which].classList.remove("dragging");
      el.removeEventListener("pointermove", apply);
      el.removeEventListener("pointerup", up);
      el.removeEventListener("pointercancel", up);
      onChange({ ...v });
    };
    el.addEventListener("pointermove", apply);
    el.addEventListener("pointerup", up);
    el.addEventListener("pointercancel", up);
  });
  function set(nv) {
    v = { left: nv.left, home: nv.home, right: nv.right };
    place();
  }
  place();
  return { el: wrap, set };
}

/** Call fn at most every `ms`, always delivering the latest arguments last. */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  let pending = null;
  return (...args) => {
    pending = args;
    const now = performance.now();
    const wait = last + ms - now;
    if (wait <= 0) {
      last = now;
      fn(...pending);
      pending = null;
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = performance.now();
        if (pending) fn(...pending);
        pending = null;
      }, wait);
    }
  };
}
