/* maskwatch web UI: the camera monitor (one tile per camera: preview, status, people today, last hour, alerts).
 *
 * Polls GET /api/v1/cameras, /api/v1/people/summary (since local midnight, and the last hour for the charts) and
 * /api/v1/alerts?camera=...; each tile's preview is fetched on its own timer. Images go through MW.apiFetch (so
 * the API key header is sent) and are shown from object URLs; a failed fetch keeps the previous image.
 */
(function () {
  "use strict";

  const POLL_MS = 2500;
  const PREVIEW_MS = 1500;
  const HOUR_MS = 3600 * 1000;
  const MINUTE_MS = 60 * 1000;
  const ALERTS_SHOWN = 3;
  const STATUS_TEXT = {
    connecting: "connecting",
    live: "live",
    reconnecting: "reconnecting",
    stopped: "stopped",
    failed: "failed",
  };
  const DEFAULT_LABELS = ["with_mask", "mask_worn_incorrectly", "without_mask"];
  const HEADLINE = [
    ["with_mask", "masked"],
    ["mask_worn_incorrectly", "incorrect"],
    ["without_mask", "unmasked"],
  ];

  const grid = document.getElementById("camera-grid");
  const status = document.getElementById("cameras-status");
  const empty = document.getElementById("cameras-empty");
  const updated = document.getElementById("cameras-updated");
  const el = MW.el;

  const tiles = new Map(); // camera name -> tile
  const snapshotUrls = new Map(); // snapshot path -> Promise<object URL | null>
  let labels = DEFAULT_LABELS.slice();
  let pollTimer = null;
  let polling = false;

  // ------------------------------------------------------------------ helpers

  function isoUtc(date) {
    return date.toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  function localMidnight() {
    const d = new Date();
    d.setHours(0, 0, 0, 0);
    return d;
  }

  function pad2(n) {
    return String(n).padStart(2, "0");
  }

  function hhmm(date) {
    return `${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
  }

  /** "12 s ago", "3 min ago", or the local time. */
  function ago(iso) {
    if (!iso) return "never";
    const t = new Date(iso);
    if (isNaN(t)) return "–";
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    return t.toLocaleString();
  }

  function percentText(value) {
    return typeof value === "number" && isFinite(value) ? `${value.toFixed(1).replace(/\.0$/, "")}%` : "–";
  }

  function cssId(name) {
    return String(name).replace(/[^A-Za-z0-9_-]/g, "_");
  }

  // ------------------------------------------------------------------ tiles

  function makeTile(name) {
    const id = cssId(name);
    const img = el("img", { class: "cam-preview", alt: `latest frame of camera ${name}`, hidden: true });
    const placeholder = el("div", { class: "cam-placeholder", text: "waiting for the first frame…" });
    const badge = el("span", { class: "cam-badge", "data-status": "connecting", text: "connecting" });
    const title = el("h2", { class: "cam-name", id: `cam-${id}-name`, text: name });
    const meta = el("p", { class: "cam-meta muted" });
    const error = el("p", { class: "cam-error", hidden: true });
    const people = el("span", { class: "cam-people-count", text: "–" });
    const bar = el("div", { class: "cam-bar", role: "img", "aria-label": "no people yet today" });
    const breakdown = el("p", { class: "cam-breakdown muted" });
    const canvas = el("canvas", {
      class: "cam-chart",
      role: "img",
      "aria-label": `people per minute on camera ${name}, the last hour`,
    });
    const alertList = el("ul", { class: "cam-alerts" });
    const alertsEmpty = el("p", { class: "muted cam-alerts-empty", text: "No alerts." });

    const root = el("article", { class: "cam-tile", "data-camera": name, "aria-labelledby": title.id }, [
      el("div", { class: "cam-head" }, [title, badge]),
      el("div", { class: "cam-preview-wrap" }, [img, placeholder]),
      meta,
      error,
      el("div", { class: "cam-today" }, [
        el("p", { class: "cam-people" }, [people, document.createTextNode(" people today")]),
        bar,
        breakdown,
      ]),
      el("div", { class: "cam-chart-wrap" }, [canvas]),
      el("h3", { class: "small-heading", text: "Last alerts" }),
      alertList,
      alertsEmpty,
    ]);
    const tile = {
      name: name,
      root: root,
      img: img,
      placeholder: placeholder,
      badge: badge,
      meta: meta,
      error: error,
      people: people,
      bar: bar,
      breakdown: breakdown,
      canvas: canvas,
      alertList: alertList,
      alertsEmpty: alertsEmpty,
      chart: null,
      previewUrl: null,
      previewBusy: false,
      previewTimer: null,
      alertsKey: "",
      removed: false,
    };
    tile.previewTimer = setInterval(() => refreshPreview(tile), PREVIEW_MS);
    refreshPreview(tile);
    return tile;
  }

  function dropTile(tile) {
    tile.removed = true;
    clearInterval(tile.previewTimer);
    if (tile.chart) tile.chart.destroy();
    if (tile.previewUrl) URL.revokeObjectURL(tile.previewUrl);
    tile.root.remove();
  }

  /** Fetch the camera's preview; show it once decoded; on 404 or an error keep the previous image. */
  async function refreshPreview(tile) {
    if (tile.previewBusy || tile.removed || document.hidden) return;
    tile.previewBusy = true;
    try {
      const url = `/api/v1/cameras/${encodeURIComponent(tile.name)}/preview.jpg?t=${Date.now()}`;
      const blob = await (await MW.apiFetch(url, { cache: "no-store" })).blob();
      if (tile.removed) return;
      const objectUrl = URL.createObjectURL(blob);
      const probe = new Image();
      probe.src = objectUrl;
      try {
        await probe.decode();
      } catch (_err) {
        URL.revokeObjectURL(objectUrl);
        return;
      }
      if (tile.removed) {
        URL.revokeObjectURL(objectUrl);
        return;
      }
      const old = tile.previewUrl;
      tile.previewUrl = objectUrl;
      tile.img.src = objectUrl;
      tile.img.hidden = false;
      tile.placeholder.hidden = true;
      tile.root.dataset.preview = "ok";
      if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
    } catch (_err) {
      if (!tile.previewUrl) tile.root.dataset.preview = "none";
    } finally {
      tile.previewBusy = false;
    }
  }

  function showCamera(tile, cam) {
    const state = STATUS_TEXT[cam.status] ? cam.status : "connecting";
    tile.root.dataset.status = state;
    tile.badge.dataset.status = state;
    tile.badge.textContent = cam.enabled === false && state === "stopped" ? "disabled" : STATUS_TEXT[state];
    const fps = typeof cam.fps === "number" ? cam.fps.toFixed(1) : "–";
    const parts = [`${fps} fps`, `${cam.dropped || 0} dropped`, `last frame ${ago(cam.last_frame)}`];
    if (cam.reconnects) parts.push(`${cam.reconnects} reconnects`);
    tile.meta.textContent = parts.join(" · ");
    tile.meta.title = cam.url || "";
    const showError = (state === "failed" || state === "reconnecting") && cam.error;
    tile.error.textContent = showError ? MW.oneLine(cam.error) : "";
    tile.error.hidden = !showError;
    if (!tile.previewUrl) {
      tile.placeholder.textContent =
        state === "failed" || state === "stopped" ? `no frame (${STATUS_TEXT[state]})` : "waiting for the first frame…";
    }
  }

  function showToday(tile, summary) {
    const total = summary ? summary.people || 0 : 0;
    const percent = (summary && summary.percent) || {};
    const counts = (summary && summary.counts) || {};
    tile.people.textContent = String(total);
    tile.root.dataset.people = String(total);
    tile.breakdown.textContent = total
      ? HEADLINE.map(([label, word]) => `${percentText(percent[label] || 0)} ${word}`).join(" · ")
      : "no people yet today";
    const segments = labels
      .filter((label) => counts[label] > 0)
      .map((label) => {
        const seg = el("span", { class: "cam-bar-seg", title: `${MW.shortLabel(label)}: ${counts[label]}` });
        seg.style.width = `${(100 * counts[label]) / total}%`;
        seg.style.background = MW.labelColor(label);
        return seg;
      });
    tile.bar.replaceChildren(...segments);
    tile.bar.setAttribute("aria-label", total ? tile.breakdown.textContent : "no people yet today");
  }

  /** Per-minute stacked bars of the last hour (minutes without people are zero). */
  function showChart(tile, summary) {
    if (!window.Chart) return;
    const now = Date.now();
    const firstMinute = Math.floor((now - HOUR_MS) / MINUTE_MS) + 1;
    const minutes = [];
    for (let m = firstMinute; m <= Math.floor(now / MINUTE_MS); m += 1) minutes.push(m);
    const byMinute = new Map();
    for (const point of (summary && summary.series) || []) {
      const m = Math.floor(new Date(point.minute).getTime() / MINUTE_MS);
      if (!isNaN(m)) byMinute.set(m, point);
    }
    const xs = minutes.map((m) => hhmm(new Date(m * MINUTE_MS)));
    const datasets = labels.map((label) => ({
      label: MW.shortLabel(label),
      data: minutes.map((m) => (byMinute.get(m) || {})[label] || 0),
      backgroundColor: MW.labelColor(label),
      borderWidth: 0,
      barPercentage: 1,
      categoryPercentage: 0.9,
    }));
    if (tile.chart) {
      tile.chart.data.labels = xs;
      tile.chart.data.datasets.forEach((ds, i) => {
        ds.data = datasets[i] ? datasets[i].data : [];
      });
      tile.chart.update("none");
      return;
    }
    tile.chart = new window.Chart(tile.canvas, {
      type: "bar",
      data: { labels: xs, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: true, position: "bottom", labels: { boxWidth: 10, font: { size: 11 } } },
          tooltip: { mode: "index", intersect: false },
        },
        scales: {
          x: { stacked: true, ticks: { maxTicksLimit: 7, maxRotation: 0, font: { size: 10 } }, grid: { display: false } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0, maxTicksLimit: 4, font: { size: 10 } } },
        },
      },
    });
  }

  function snapshotUrl(path) {
    if (!snapshotUrls.has(path)) {
      snapshotUrls.set(
        path,
        MW.apiFetch(path)
          .then((r) => r.blob())
          .then((b) => URL.createObjectURL(b))
          .catch(() => {
            snapshotUrls.delete(path); // try again at the next poll
            return null;
          }),
      );
    }
    return snapshotUrls.get(path);
  }

  function showAlerts(tile, alerts) {
    const key = alerts.map((a) => `${a.id}:${a.state}`).join(",");
    tile.alertsEmpty.hidden = alerts.length > 0;
    if (key === tile.alertsKey) return;
    tile.alertsKey = key;
    const items = alerts.map((alert) => {
      const thumb = el("img", { class: "cam-alert-thumb", alt: "snapshot (faces blurred)", hidden: true });
      const noThumb = el("span", { class: "cam-alert-thumb cam-alert-nothumb", text: "no snapshot" });
      if (alert.snapshot) {
        snapshotUrl(alert.snapshot).then((url) => {
          if (!url) return;
          thumb.src = url;
          thumb.hidden = false;
          noThumb.hidden = true;
        });
      }
      const when = new Date(alert.time);
      const state = alert.state || "none";
      const stateEl = el("span", {
        class: "cam-alert-state",
        "data-state": state,
        text: state === "none" ? "not sent" : state,
      });
      const failed = (alert.deliveries || []).find((d) => d.state === "failed" && d.last_error);
      if (failed) stateEl.title = `${failed.target}: ${failed.last_error}`;
      return el("li", { class: "cam-alert", "data-state": state }, [
        thumb,
        noThumb,
        el("div", { class: "cam-alert-text" }, [
          MW.labelBadge(alert.label),
          el("span", { class: "muted", text: isNaN(when) ? "" : when.toLocaleTimeString() }),
          stateEl,
        ]),
      ]);
    });
    tile.alertList.replaceChildren(...items);
  }

  // ------------------------------------------------------------------ polling

  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const health = await MW.loadHealth();
      if (Array.isArray(health.labels) && health.labels.length) {
        // stack masked, incorrect, unmasked in that order, then anything else
        labels = DEFAULT_LABELS.filter((l) => health.labels.includes(l)).concat(
          health.labels.filter((l) => !DEFAULT_LABELS.includes(l)),
        );
      }
      const cameras = await MW.apiJson("/api/v1/cameras");
      syncTiles(cameras);
      const now = new Date();
      const [today, hour] = await Promise.all([
        MW.apiJson(`/api/v1/people/summary?from=${encodeURIComponent(isoUtc(localMidnight()))}`),
        MW.apiJson(`/api/v1/people/summary?from=${encodeURIComponent(isoUtc(new Date(now - HOUR_MS)))}`),
      ]);
      const todayBy = new Map((today.cameras || []).map((c) => [c.camera, c]));
      const hourBy = new Map((hour.cameras || []).map((c) => [c.camera, c]));
      const alerts = await Promise.all(
        cameras.map((cam) =>
          MW.apiJson(`/api/v1/alerts?camera=${encodeURIComponent(cam.name)}&limit=${ALERTS_SHOWN}`)
            .then((body) => body.alerts || [])
            .catch(() => null),
        ),
      );
      cameras.forEach((cam, i) => {
        const tile = tiles.get(cam.name);
        if (!tile) return;
        showToday(tile, todayBy.get(cam.name));
        showChart(tile, hourBy.get(cam.name));
        if (alerts[i]) showAlerts(tile, alerts[i]);
      });
      MW.showMessage(status, "", "");
      updated.textContent = `updated ${now.toLocaleTimeString()}`;
      document.body.dataset.loaded = "true";
    } catch (err) {
      MW.showMessage(status, err.message || String(err), "error");
    } finally {
      polling = false;
    }
  }

  /** Tiles for exactly these cameras, in this order: removed cameras disappear, new ones appear. */
  function syncTiles(cameras) {
    const names = new Set(cameras.map((c) => c.name));
    for (const [name, tile] of tiles) {
      if (!names.has(name)) {
        dropTile(tile);
        tiles.delete(name);
      }
    }
    cameras.forEach((cam, i) => {
      let tile = tiles.get(cam.name);
      if (!tile) {
        tile = makeTile(cam.name);
        tiles.set(cam.name, tile);
      }
      if (grid.children[i] !== tile.root) grid.insertBefore(tile.root, grid.children[i] || null);
      showCamera(tile, cam);
    });
    empty.hidden = cameras.length > 0;
  }

  function schedule() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      if (!document.hidden) await poll();
      schedule();
    }, POLL_MS);
  }

  document.addEventListener("mw:api-key-changed", () => {
    snapshotUrls.clear();
    for (const tile of tiles.values()) tile.alertsKey = "";
    poll();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });

  poll().then(schedule);
})();
