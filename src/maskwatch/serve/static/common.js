/* maskwatch web UI: helpers shared by every page (nav, API key, fetch, drawing).
 *
 * Plain script (no build step, no modules): everything lives on the global `MW`.
 */
(function () {
  "use strict";

  const KEY_STORAGE = "maskwatch-api-key";
  const AUTH_MESSAGE = "API key required or wrong";

  const SHORT_LABELS = {
    with_mask: "mask",
    without_mask: "no mask",
    mask_worn_incorrectly: "incorrect",
  };
  const FALLBACK_LABELS = ["with_mask", "without_mask", "mask_worn_incorrectly"];
  const FALLBACK_COLORS = {
    with_mask: "#2ea043",
    without_mask: "#da3633",
    mask_worn_incorrectly: "#f0a014",
  };
  const SPARE_COLORS = ["#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

  const PAGES = [
    { path: "/", title: "Photos" },
    { path: "/live", title: "Live camera" },
    { path: "/dashboard", title: "Dashboard" },
    { path: "/cameras", title: "Cameras" },
  ];

  // ---------------------------------------------------------------- API key

  function getApiKey() {
    try {
      return (localStorage.getItem(KEY_STORAGE) || "").trim();
    } catch (_err) {
      return "";
    }
  }

  function setApiKey(value) {
    try {
      if (value) localStorage.setItem(KEY_STORAGE, value.trim());
      else localStorage.removeItem(KEY_STORAGE);
    } catch (_err) {
      /* storage disabled: the key lasts until reload only */
    }
  }

  /** Headers to send with every request (the API key, when one is stored). */
  function authHeaders(extra) {
    const headers = new Headers(extra || {});
    const key = getApiKey();
    if (key) headers.set("X-API-Key", key);
    return headers;
  }

  // ---------------------------------------------------------------- fetch

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.name = "ApiError";
      this.status = status;
    }
  }

  /** The one-line reason of a failed response: `{"detail": "..."}`, or the status text. */
  async function errorLine(response) {
    if (response.status === 401) return AUTH_MESSAGE;
    let detail = "";
    try {
      const text = await response.text();
      try {
        const body = JSON.parse(text);
        detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body);
      } catch (_err) {
        detail = text;
      }
    } catch (_err) {
      /* no body */
    }
    detail = oneLine(detail) || response.statusText || "request failed";
    return `${detail} (HTTP ${response.status})`;
  }

  function oneLine(text) {
    return String(text || "")
      .split(/\r?\n/)[0]
      .trim()
      .slice(0, 300);
  }

  /** fetch() with the API key header; throws ApiError with a one-line message unless the response is OK. */
  async function apiFetch(url, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = authHeaders(opts.headers);
    let response;
    try {
      response = await fetch(url, opts);
    } catch (err) {
      throw new ApiError(`cannot reach the server (${oneLine(err.message)})`, 0);
    }
    if (!response.ok) throw new ApiError(await errorLine(response), response.status);
    return response;
  }

  async function apiJson(url, options) {
    const response = await apiFetch(url, options);
    return response.json();
  }

  /** Show a one-line message in `el`; kind is "error", "ok", "info" or "" (clears the style). */
  function showMessage(el, text, kind) {
    if (!el) return;
    el.textContent = oneLine(text);
    el.dataset.kind = kind || "";
    el.hidden = !text;
  }

  // ---------------------------------------------------------------- labels and colours

  let health = null;

  /**
   * GET /api/v1/health once; falls back to the built-in labels and colours when it fails
   * (then `error` holds the ApiError).
   */
  function loadHealth() {
    if (!health) {
      health = apiJson("/api/v1/health")
        .catch((err) => ({ error: err }))
        .then((body) => {
          const labels = Array.isArray(body.labels) && body.labels.length ? body.labels : FALLBACK_LABELS;
          const colors = Object.assign({}, FALLBACK_COLORS, body.colors || {});
          labels.forEach((label, i) => {
            if (!colors[label]) colors[label] = SPARE_COLORS[i % SPARE_COLORS.length];
          });
          return Object.assign({}, body, { labels: labels, colors: colors });
        });
    }
    return health;
  }

  let colorCache = Object.assign({}, FALLBACK_COLORS);
  loadHealth().then((h) => {
    colorCache = h.colors;
  });

  function labelColor(label) {
    return colorCache[label] || SPARE_COLORS[Math.abs(hashString(label)) % SPARE_COLORS.length];
  }

  function shortLabel(label) {
    return SHORT_LABELS[label] || String(label).replace(/_/g, " ");
  }

  function hashString(text) {
    let h = 0;
    for (let i = 0; i < text.length; i += 1) h = (h * 31 + text.charCodeAt(i)) | 0;
    return h;
  }

  /** Black or white, whichever reads better on `hex`. */
  function textColorOn(hex) {
    const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
    if (!m) return "#fff";
    const [r, g, b] = m.slice(1).map((v) => parseInt(v, 16));
    return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#000" : "#fff";
  }

  function formatScore(value) {
    return typeof value === "number" && isFinite(value) ? value.toFixed(2) : "–";
  }

  // ---------------------------------------------------------------- drawing

  /**
   * Draw face boxes with captions on a 2D context.
   * `faces`: the API's faces; `scale`: canvas pixels per server pixel ({x, y} or a number).
   */
  function drawFaces(ctx, faces, scale) {
    const sx = typeof scale === "number" ? scale : (scale && scale.x) || 1;
    const sy = typeof scale === "number" ? scale : (scale && scale.y) || 1;
    const size = Math.max(ctx.canvas.width, ctx.canvas.height);
    const line = Math.max(2, Math.round(size / 300));
    const font = Math.max(12, Math.round(size / 55));
    ctx.save();
    ctx.lineWidth = line;
    ctx.font = `600 ${font}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    for (const face of faces || []) {
      const [x1, y1, x2, y2] = face.box;
      const x = x1 * sx;
      const y = y1 * sy;
      const w = (x2 - x1) * sx;
      const h = (y2 - y1) * sy;
      const color = labelColor(face.label);
      ctx.strokeStyle = color;
      ctx.strokeRect(x, y, w, h);

      const caption = `${shortLabel(face.label)} ${formatScore(face.score)}`;
      const pad = Math.round(font * 0.25);
      const tw = ctx.measureText(caption).width + 2 * pad;
      const th = font + 2 * pad;
      let ty = y - th;
      if (ty < 0) ty = y; // no room above: caption inside the box
      const tx = Math.min(Math.max(0, x - line / 2), Math.max(0, ctx.canvas.width - tw));
      ctx.fillStyle = color;
      ctx.fillRect(tx, ty, tw, th);
      ctx.fillStyle = textColorOn(color);
      ctx.fillText(caption, tx + pad, ty + pad);
    }
    ctx.restore();
  }

  /** {label: count} for a list of faces, in the order of `labels`. */
  function countLabels(faces, labels) {
    const counts = {};
    (labels || []).forEach((label) => {
      counts[label] = 0;
    });
    for (const face of faces || []) counts[face.label] = (counts[face.label] || 0) + 1;
    return counts;
  }

  /** "2 mask, 1 no mask" (labels with zero faces left out). */
  function describeCounts(counts) {
    const parts = Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([label, n]) => `${n} ${shortLabel(label)}`);
    return parts.join(", ");
  }

  /** A small coloured dot + short label, for tables and legends. */
  function labelBadge(label) {
    const span = document.createElement("span");
    span.className = "label-badge";
    const dot = document.createElement("span");
    dot.className = "swatch";
    dot.style.background = labelColor(label);
    dot.setAttribute("aria-hidden", "true");
    span.append(dot, document.createTextNode(shortLabel(label)));
    span.title = label;
    return span;
  }

  // ---------------------------------------------------------------- page chrome

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value;
      else if (value !== null && value !== undefined && value !== false)
        node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  /** Fill <header id="site-header"> with the nav and the API key form. */
  function renderHeader() {
    const header = document.getElementById("site-header");
    if (!header) return;
    const here = location.pathname.replace(/\/+$/, "") || "/";

    const links = PAGES.map((page) => {
      const a = el("a", { href: page.path, text: page.title });
      if (page.path === here) a.setAttribute("aria-current", "page");
      return el("li", {}, [a]);
    });
    const nav = el("nav", { "aria-label": "Main" }, [el("ul", { class: "nav-links" }, links)]);
    const brand = el("a", { class: "brand", href: "/", text: "maskwatch" });

    const input = el("input", {
      id: "api-key",
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "none",
      value: getApiKey(),
    });
    const save = el("button", { type: "submit", text: "Save" });
    const clear = el("button", { type: "button", class: "secondary", text: "Clear" });
    const note = el("span", { class: "key-note", role: "status", "aria-live": "polite" });
    const form = el("form", { class: "key-form", id: "api-key-form" }, [
      el("label", { for: "api-key", text: "API key" }),
      input,
      save,
      clear,
      note,
    ]);
    const details = el("details", { class: "key-box" }, [
      el("summary", { text: getApiKey() ? "API key ✓" : "API key" }),
      form,
    ]);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      setApiKey(input.value);
      details.querySelector("summary").textContent = getApiKey() ? "API key ✓" : "API key";
      showMessage(note, getApiKey() ? "saved in this browser" : "cleared", "ok");
      document.dispatchEvent(new CustomEvent("mw:api-key-changed"));
    });
    clear.addEventListener("click", () => {
      input.value = "";
      form.requestSubmit();
    });

    header.replaceChildren(el("div", { class: "header-inner" }, [brand, nav, details]));

    loadHealth().then((h) => {
      if (h.error && h.error.status === 401) {
        details.open = true;
        showMessage(note, AUTH_MESSAGE, "error");
      }
      const footer = document.getElementById("site-footer");
      if (footer && h.version) footer.textContent = `maskwatch ${h.version}`;
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", renderHeader);
  else renderHeader();

  window.MW = {
    AUTH_MESSAGE: AUTH_MESSAGE,
    ApiError: ApiError,
    getApiKey: getApiKey,
    setApiKey: setApiKey,
    authHeaders: authHeaders,
    apiFetch: apiFetch,
    apiJson: apiJson,
    errorLine: errorLine,
    oneLine: oneLine,
    showMessage: showMessage,
    loadHealth: loadHealth,
    labelColor: labelColor,
    shortLabel: shortLabel,
    formatScore: formatScore,
    drawFaces: drawFaces,
    countLabels: countLabels,
    describeCounts: describeCounts,
    labelBadge: labelBadge,
    el: el,
  };
})();
