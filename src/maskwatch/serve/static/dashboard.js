/* maskwatch web UI: the dashboard (totals, faces per label over time, compliance, CSV download). */
(function () {
  "use strict";

  const REFRESH_MS = 10000;
  const HOUR = 3600 * 1000;
  const DAY = 24 * HOUR;
  const PERIODS = { "1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY };
  const AUTO_BUCKET = { "1h": "minute", "24h": "hour", "7d": "hour", "30d": "day" };
  const BUCKET_MS = { minute: 60 * 1000, hour: HOUR, day: DAY };
  const MAX_FILLED_BUCKETS = 3000;
  const COMPLIANT = "with_mask";

  const form = document.getElementById("filters");
  const sourceSelect = document.getElementById("filter-source");
  const periodSelect = document.getElementById("filter-period");
  const fromInput = document.getElementById("filter-from");
  const toInput = document.getElementById("filter-to");
  const bucketSelect = document.getElementById("filter-bucket");
  const autoRefresh = document.getElementById("auto-refresh");
  const status = document.getElementById("dashboard-status");
  const rangeNote = document.getElementById("dashboard-range");
  const totalsEl = document.getElementById("totals");
  const csvLink = document.getElementById("download-csv");
  const chartCanvas = document.getElementById("chart");
  const chartEmpty = document.getElementById("chart-empty");

  let chart = null;
  let requestId = 0;
  let loading = false;
  let timer = null;

  // ------------------------------------------------------------------ query

  /** "2026-11-26T10:00:00Z" (whole seconds, UTC). */
  function isoUtc(date) {
    return date.toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  /** A Date as the value of a datetime-local input (local time). */
  function localInputValue(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return (
      `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
      `T${pad(date.getHours())}:${pad(date.getMinutes())}`
    );
  }

  /**
   * {from, to, bucket, source} from the filters; throws Error with a one-line message when invalid.
   * For the "last ..." periods `to` is null: the server's clock decides what "now" is, so nothing it
   * logged a moment ago falls outside the period.
   */
  function currentQuery() {
    const period = periodSelect.value;
    let from;
    let to;
    if (period === "custom") {
      if (!fromInput.value || !toInput.value) throw new Error("choose both a start and an end time");
      from = new Date(fromInput.value);
      to = new Date(toInput.value);
      if (isNaN(from) || isNaN(to)) throw new Error("the custom period is not a valid date");
      if (from >= to) throw new Error("the start must be before the end");
    } else {
      from = new Date(Date.now() - PERIODS[period]);
      to = null;
    }
    let bucket = bucketSelect.value;
    if (bucket === "auto") {
      const span = (to || new Date()) - from;
      bucket = AUTO_BUCKET[period] || (span <= 3 * HOUR ? "minute" : span <= 8 * DAY ? "hour" : "day");
    }
    return { from: from, to: to, bucket: bucket, source: sourceSelect.value };
  }

  function queryString(query, withBucket) {
    const params = new URLSearchParams({ from: isoUtc(query.from) });
    if (query.to) params.set("to", isoUtc(query.to));
    if (withBucket) params.set("bucket", query.bucket);
    if (query.source) params.set("source", query.source);
    return params.toString();
  }

  // ------------------------------------------------------------------ refresh

  async function refresh() {
    let query;
    try {
      query = currentQuery();
    } catch (err) {
      MW.showMessage(status, err.message, "error");
      return;
    }
    const id = ++requestId;
    loading = true;
    form.setAttribute("aria-busy", "true");
    csvLink.href = `/api/v1/events.csv?${queryString(query, false)}`;
    try {
      const [stats, health] = await Promise.all([
        MW.apiJson(`/api/v1/stats?${queryString(query, true)}`),
        MW.loadHealth(),
      ]);
      if (id !== requestId) return; // a newer request is on its way
      const labels = Array.isArray(stats.labels) && stats.labels.length ? stats.labels : health.labels;
      fillSources(stats.sources || []);
      showTotals(stats.totals || {}, labels);
      showChart(stats, labels);
      rangeNote.textContent = describeRange(stats, query);
      MW.showMessage(status, `Updated ${new Date().toLocaleTimeString()}`, "ok");
    } catch (err) {
      if (id !== requestId) return;
      MW.showMessage(status, err.message, "error");
    } finally {
      if (id === requestId) {
        loading = false;
        form.removeAttribute("aria-busy");
      }
    }
  }

  function describeRange(stats, query) {
    const from = new Date(stats.from || query.from);
    const to = new Date(stats.to || query.to || Date.now());
    const source = query.source ? `source “${query.source}”` : "all sources";
    return `${from.toLocaleString()} – ${to.toLocaleString()} · ${source} · per ${stats.bucket || query.bucket}`;
  }

  function fillSources(sources) {
    const chosen = sourceSelect.value;
    const names = Array.from(new Set(sources.concat(chosen ? [chosen] : []))).sort();
    const options = [MW.el("option", { value: "", text: "all sources" })];
    names.forEach((name) => options.push(MW.el("option", { value: name, text: name })));
    sourceSelect.replaceChildren(...options);
    sourceSelect.value = chosen;
  }

  // ------------------------------------------------------------------ totals

  function compliance(faces, compliant) {
    return faces > 0 && typeof compliant === "number" ? (100 * compliant) / faces : null;
  }

  function showTotals(totals, labels) {
    const faces = totals.faces || 0;
    document.getElementById("total-images").textContent = String(totals.images || 0);
    document.getElementById("total-faces").textContent = String(faces);
    const pct = labels.includes(COMPLIANT) ? compliance(faces, totals[COMPLIANT] || 0) : null;
    document.getElementById("total-compliance").textContent = pct === null ? "–" : `${pct.toFixed(1)} %`;

    for (const label of labels) {
      const id = `total-${label}`;
      let card = document.getElementById(`card-${label}`);
      if (!card) {
        const title = MW.el("span", { class: "card-label" }, [MW.labelBadge(label)]);
        card = MW.el("div", { class: "card card-label-count", id: `card-${label}`, "data-label": label }, [
          title,
          MW.el("span", { class: "card-value", id: id }),
          MW.el("span", { class: "card-note muted", id: `share-${label}` }),
        ]);
        card.style.borderTopColor = MW.labelColor(label);
        totalsEl.append(card);
      }
      const n = totals[label] || 0;
      document.getElementById(id).textContent = String(n);
      document.getElementById(`share-${label}`).textContent = faces
        ? `${((100 * n) / faces).toFixed(1)} % of faces`
        : "";
    }
  }

  // ------------------------------------------------------------------ chart

  /** The series with empty buckets filled in, so that time runs evenly along the axis. */
  function evenSeries(stats, bucket) {
    const series = stats.series || [];
    const step = BUCKET_MS[bucket];
    const from = Date.parse(stats.from);
    const to = Date.parse(stats.to);
    if (!step || isNaN(from) || isNaN(to) || (to - from) / step > MAX_FILLED_BUCKETS) return series;
    const byStart = new Map(series.map((row) => [Date.parse(row.start), row]));
    const first = Math.floor(from / step) * step;
    const onGrid = series.every((row) => (Date.parse(row.start) - first) % step === 0);
    if (!onGrid) return series; // buckets not aligned the way we think: show them as they are
    const rows = [];
    for (let t = first; t < to; t += step)
      rows.push(byStart.get(t) || { start: new Date(t).toISOString(), images: 0, faces: 0 });
    return rows;
  }

  function bucketLabel(start, bucket) {
    const date = new Date(start);
    if (bucket === "minute") return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (bucket === "hour")
      return date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    return date.toLocaleDateString([], { month: "short", day: "numeric" });
  }

  function showChart(stats, labels) {
    const bucket = stats.bucket || "hour";
    const rows = evenSeries(stats, bucket);
    const hasFaces = rows.some((row) => (row.faces || 0) > 0 || (row.images || 0) > 0);
    chartEmpty.hidden = hasFaces;
    if (typeof window.Chart === "undefined") {
      MW.showMessage(chartEmpty, "The chart library did not load; the totals above are still correct.", "error");
      return;
    }

    const data = {
      labels: rows.map((row) => bucketLabel(row.start, bucket)),
      datasets: labels.map((label) => ({
        type: "bar",
        label: MW.shortLabel(label),
        data: rows.map((row) => row[label] || 0),
        backgroundColor: MW.labelColor(label),
        stack: "faces",
        yAxisID: "y",
        order: 2,
      })),
    };
    if (labels.includes(COMPLIANT)) {
      data.datasets.push({
        type: "line",
        label: "compliance %",
        data: rows.map((row) => {
          const pct = compliance(row.faces || 0, row[COMPLIANT] || 0);
          return pct === null ? null : Math.round(pct * 10) / 10;
        }),
        borderColor: "#4c6ef5",
        backgroundColor: "#4c6ef5",
        pointRadius: rows.length > 60 ? 0 : 3,
        spanGaps: true,
        tension: 0, // straight segments: a smoothed line would show values that were never measured
        yAxisID: "compliance",
        order: 1,
      });
    }

    if (chart) {
      chart.data = data;
      chart.update("none");
      return;
    }
    const styles = getComputedStyle(document.documentElement);
    const textColor = styles.getPropertyValue("--muted").trim() || "#666";
    const gridColor = styles.getPropertyValue("--border").trim() || "#ddd";
    chart = new window.Chart(chartCanvas, {
      data: data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { color: textColor } },
          tooltip: {
            callbacks: {
              label: (ctx) =>
                `${ctx.dataset.label}: ${ctx.parsed.y}${ctx.dataset.yAxisID === "compliance" ? " %" : ""}`,
            },
          },
        },
        scales: {
          x: { stacked: true, ticks: { color: textColor, maxRotation: 0, autoSkip: true }, grid: { display: false } },
          y: {
            stacked: true,
            beginAtZero: true,
            grace: "5%",
            title: { display: true, text: "faces", color: textColor },
            ticks: { color: textColor, precision: 0 },
            grid: { color: gridColor },
          },
          compliance: {
            position: "right",
            min: 0,
            max: 100,
            title: { display: true, text: "compliance %", color: textColor },
            ticks: { color: textColor },
            grid: { drawOnChartArea: false },
          },
        },
      },
    });
  }

  // ------------------------------------------------------------------ CSV

  /** The file name from Content-Disposition, or a default. */
  function attachmentName(response) {
    const header = response.headers.get("Content-Disposition") || "";
    const match = /filename="?([^";]+)"?/i.exec(header);
    return match ? match[1] : "maskwatch-events.csv";
  }

  csvLink.addEventListener("click", async (event) => {
    if (!MW.getApiKey()) return; // a plain link works without a key
    event.preventDefault();
    try {
      const response = await MW.apiFetch(csvLink.href);
      const url = URL.createObjectURL(await response.blob());
      const a = MW.el("a", { href: url, download: attachmentName(response) });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      MW.showMessage(status, `CSV: ${err.message}`, "error");
    }
  });

  // ------------------------------------------------------------------ wiring

  function showCustomFields() {
    const custom = periodSelect.value === "custom";
    document.querySelectorAll(".custom-range").forEach((node) => {
      node.hidden = !custom;
    });
    if (custom && !fromInput.value && !toInput.value) {
      const now = new Date();
      toInput.value = localInputValue(now);
      fromInput.value = localInputValue(new Date(now.getTime() - DAY));
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = null;
    if (autoRefresh.checked) {
      timer = setInterval(() => {
        if (!loading && document.visibilityState === "visible") refresh();
      }, REFRESH_MS);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  [sourceSelect, bucketSelect, fromInput, toInput].forEach((input) => input.addEventListener("change", refresh));
  periodSelect.addEventListener("change", () => {
    showCustomFields();
    refresh();
  });
  autoRefresh.addEventListener("change", schedule);
  document.addEventListener("mw:api-key-changed", refresh);

  showCustomFields();
  schedule();
  refresh();
})();
