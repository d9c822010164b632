// The SAE feature picker of one block: the current feature (id, label, category, confidence),
// a neighbourhood list of ~200 features around it, text search over labels and categories, and
// direct id entry ("#1234" or a bare number + Enter).

import { h, icon } from "../ui/dom.js";

const NEIGHBOURHOOD = 200;
const N_FEATURES = 5120;

export class FeaturePicker {
  /**
   * api: the REST client; categories: {colorOf(name)}; onPick(id): the performer chose a feature.
   */
  constructor({ api, categories, onPick }) {
    this.api = api;
    this.categories = categories;
    this.onPick = onPick;
    this.block = null;
    this.featureId = 0;
    this.nFeatures = N_FEATURES;
    this.query = "";
    this.items = [];
    this.requestSeq = 0;
    this.infoCache = new Map(); // "block:id" -> feature

    this.idEl = h("div", { class: "feature-id" });
    this.labelEl = h("div", { class: "feature-label" });
    this.subEl = h("div", { class: "feature-sub" });
    const step = (d) => () => this.pick(Math.min(this.nFeatures - 1, Math.max(0, this.featureId + d)));
    this.card = h("div", { class: "feature-current" },
      this.idEl,
      h("div", { style: { minWidth: "0" } }, this.labelEl, this.subEl),
      h("div", { class: "feature-step" },
        h("button", { type: "button", class: "icon-btn", title: "previous feature", onclick: step(-1) }, icon("M4 10 L8 6 L12 10")),
        h("button", { type: "button", class: "icon-btn", title: "next feature", onclick: step(1) }, icon("M4 6 L8 10 L12 6"))));
    this.search = h("input", {
      class: "input",
      type: "search",
      placeholder: "Search labels, categories, or #id",
      spellcheck: false,
      "aria-label": "search features",
    });
    this.search.addEventListener("input", () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.setQuery(this.search.value), 160);
    });
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        const id = parseDirectId(this.search.value, this.nFeatures);
        if (id !== null) {
          clearTimeout(this.searchTimer);
          this.search.value = "";
          this.query = "";
          this.pick(id);
        }
      }
      if (e.key === "Escape") {
        this.search.value = "";
        this.setQuery("");
      }
      e.stopPropagation();
    });
    this.categorySelect = h("select", { class: "select", style: { width: "118px" }, title: "filter by category", "aria-label": "category" });
    this.categorySelect.addEventListener("change", () => this.refresh());
    this.modeEl = h("div", { class: "picker-mode" });
    this.list = h("div", { class: "feature-list", role: "listbox", "aria-label": "features" });
    this.el = h("div", { class: "feature-picker" },
      this.card,
      h("div", { class: "picker-bar" },
        h("div", { class: "search-wrap" }, icon("M7 12 A5 5 0 1 1 7 2 A5 5 0 1 1 7 12 M10.5 10.5 L14 14"), this.search),
        this.categorySelect),
      this.modeEl,
      this.list);
  }

  /** Fill the category filter once the server's categories are known. */
  setCategories(names) {
    this.categorySelect.replaceChildren(
      h("option", { value: "" }, "All categories"),
      ...names.map((n) => h("option", { value: n }, n)),
    );
  }

  /** Show another block or feature (from settings). */
  show(block, featureId) {
    const otherBlock = block !== this.block;
    const moved = otherBlock || featureId !== this.featureId;
    this.block = block;
    this.featureId = featureId;
    this.renderCard();
    // Another block lists its own features; outside a search the neighbourhood recentres on the
    // feature, whoever changed it.
    if (otherBlock || (moved && !this.query && !this.categorySelect.value)) this.refresh();
    else if (moved) this.markCurrent();
  }

  pick(id) {
    if (id !== this.featureId) {
      this.featureId = id;
      this.renderCard();
      this.onPick(id);
    }
    // Outside a search, the list follows the pick: its neighbourhood, centred on it.
    if (!this.query && !this.categorySelect.value && !this.items.some((f) => f.id === id)) this.refresh();
    else this.markCurrent();
  }

  setQuery(q) {
    this.query = q.trim();
    this.refresh();
  }

  async refresh() {
    const block = this.block;
    if (block == null) return;
    const seq = ++this.requestSeq;
    const direct = parseDirectId(this.query, this.nFeatures);
    const category = this.categorySelect.value;
    const params = { limit: NEIGHBOURHOOD };
    let mode;
    if (this.query && direct === null) {
      params.q = this.query;
      mode = `Search “${this.query}”`;
    } else {
      params.around = direct ?? this.featureId;
      mode = `Neighbourhood of #${params.around}`;
    }
    if (category) {
      params.category = category;
      mode += ` · ${category}`;
    }
    this.modeEl.replaceChildren(h("span", {}, mode), h("span", {}, "…"));
    let res;
    try {
      res = await this.api.features(block, params);
    } catch (err) {
      if (seq !== this.requestSeq) return;
      this.items = [];
      this.list.replaceChildren(h("div", { class: "list-empty" }, `Features unavailable: ${err.message}`));
      this.modeEl.replaceChildren(h("span", {}, mode));
      return;
    }
    if (seq !== this.requestSeq) return;
    this.nFeatures = res.n_features || N_FEATURES;
    this.items = res.features || [];
    this.listBlock = block;
    for (const f of this.items) this.infoCache.set(`${block}:${f.id}`, f);
    const labelled = res.labels_source ? "" : " · no labels file";
    this.modeEl.replaceChildren(h("span", {}, mode), h("span", {}, `${res.total ?? this.items.length} features${labelled}`));
    this.renderList();
    this.renderCard();
  }

  renderList() {
    if (!this.items.length) {
      this.list.replaceChildren(h("div", { class: "list-empty" }, "No feature matches."));
      return;
    }
    const frag = document.createDocumentFragment();
    for (const f of this.items) {
      const c = this.categories.colorOf(f.category);
      const row = h("div", {
        class: `feature-item${f.dead ? " dead" : ""}`,
        role: "option",
        dataset: { id: String(f.id) },
        title: f.dead ? "dead feature: never fires" : f.label || "unlabeled",
        style: { "--c": c },
        onclick: () => this.pick(f.id),
      },
      h("span", { class: "fid" }, String(f.id)),
      h("span", { class: "cdot" }),
      h("span", { class: f.label ? "flabel" : "flabel unlabeled" }, f.label || "unlabeled"),
      h("span", { class: "fcat" }, f.category || ""));
      frag.appendChild(row);
    }
    this.list.replaceChildren(frag);
    this.markCurrent(true);
  }

  markCurrent(scroll = true) {
    let current = null;
    for (const row of this.list.children) {
      const on = row.dataset && Number(row.dataset.id) === this.featureId;
      row.classList.toggle("current", on);
      if (on) current = row;
    }
    if (current && scroll) {
      this.list.scrollTop = current.offsetTop - this.list.clientHeight / 2 + current.offsetHeight / 2;
    }
  }

  async renderCard() {
    const block = this.block;
    const id = this.featureId;
    this.idEl.textContent = `#${id}`;
    let f = this.infoCache.get(`${block}:${id}`);
    if (!f) {
      this.fillCard(null);
      try {
        f = await this.api.feature(block, id);
        this.infoCache.set(`${block}:${id}`, f);
      } catch {
        return;
      }
      if (block !== this.block || id !== this.featureId) return;
    }
    this.fillCard(f);
  }

  fillCard(f) {
    const label = f && f.label;
    this.labelEl.textContent = label || (f ? "unlabeled" : "…");
    this.labelEl.classList.toggle("unlabeled", !label);
    if (!f) {
      this.subEl.replaceChildren();
      return;
    }
    const level = f.confidence_level || "unlabeled";
    const parts = [];
    if (f.category) parts.push(h("span", { class: "cat-chip", style: { "--c": this.categories.colorOf(f.category) } }, f.category));
    if (level !== "unlabeled") {
      parts.push(h("span", { class: `conf ${level}`, title: `confidence ${f.confidence != null ? f.confidence.toFixed(2) : ""}` }, h("i"), h("i"), h("i")));
      parts.push(h("span", { class: "conf-text" }, `${level}${f.confidence != null ? " · " + f.confidence.toFixed(2) : ""}`));
    } else {
      parts.push(h("span", { class: "conf-text" }, "no label for this feature yet"));
    }
    if (f.dead) parts.push(h("span", { class: "conf-text", style: { color: "var(--danger)" } }, "dead"));
    this.subEl.replaceChildren(...parts);
  }
}

/** "#123" or "123" -> 123 when in range, else null. */
export function parseDirectId(text, n = N_FEATURES) {
  const m = /^\s*#?(\d{1,5})\s*$/.exec(text || "");
  if (!m) return null;
  const id = Number(m[1]);
  return id >= 0 && id < n ? id : null;
}
