/* maskwatch web UI: the photo page (drop or pick images, one request per image, in order). */
(function () {
  "use strict";

  const DETECT_URL = "/api/v1/detect?source=upload";
  const MAX_CANVAS_SIDE = 1600; // canvas pixels; larger photos are drawn scaled down

  const dropZone = document.getElementById("drop-zone");
  const fileInput = document.getElementById("file-input");
  const results = document.getElementById("results");
  const emptyNote = document.getElementById("results-empty");
  const clearButton = document.getElementById("clear-results");
  const status = document.getElementById("upload-status");
  const template = document.getElementById("result-template");

  const queue = [];
  let busy = false;
  let done = 0;
  let failed = 0;

  function addFiles(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length) return;
    for (const file of files) queue.push({ file: file, card: makeCard(file) });
    emptyNote.hidden = true;
    clearButton.hidden = false;
    pump();
  }

  function makeCard(file) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.querySelector(".result-name").textContent = file.name || "pasted image";
    results.append(card);
    return card;
  }

  async function pump() {
    if (busy) return;
    busy = true;
    try {
      while (queue.length) {
        const job = queue.shift();
        updateStatus();
        if (!(await processFile(job.file, job.card))) failed += 1;
        done += 1;
      }
    } finally {
      busy = false;
      updateStatus();
    }
  }

  function updateStatus() {
    const waiting = queue.length + (busy ? 1 : 0);
    if (waiting) MW.showMessage(status, `Checking… ${waiting} photo${waiting === 1 ? "" : "s"} to go`, "info");
    else if (!done) MW.showMessage(status, "", "");
    else {
      const failures = failed ? `, ${failed} failed` : "";
      MW.showMessage(
        status,
        `Done: ${done} photo${done === 1 ? "" : "s"} checked${failures}.`,
        failed ? "error" : "ok",
      );
    }
  }

  /** Detect the faces in one file and fill its card; false when the server refused it. */
  async function processFile(file, card) {
    const summary = card.querySelector(".result-summary");
    const errorLine = card.querySelector(".result-error");
    card.dataset.state = "running";
    card.setAttribute("aria-busy", "true");
    summary.textContent = "detecting faces…";

    const form = new FormData();
    form.append("file", file, file.name || "image");
    const [detection, bitmap] = await Promise.all([
      MW.apiJson(DETECT_URL, { method: "POST", body: form }).catch((err) => err),
      decode(file),
    ]);
    card.removeAttribute("aria-busy");

    if (detection instanceof Error) {
      card.dataset.state = "error";
      card.dataset.faces = "0";
      summary.textContent = "failed";
      MW.showMessage(errorLine, detection.message, "error");
      if (bitmap) drawResult(card, bitmap, null);
      else card.querySelector(".result-body").hidden = true;
      return false;
    }

    const faces = detection.faces || [];
    card.dataset.state = "done";
    card.dataset.faces = String(faces.length);
    const health = await MW.loadHealth();
    const counts = MW.describeCounts(MW.countLabels(faces, health.labels));
    summary.textContent =
      `${faces.length} face${faces.length === 1 ? "" : "s"}` +
      (counts ? `: ${counts}` : "") +
      ` · ${detection.width}×${detection.height} px`;
    drawResult(card, bitmap, detection);
    fillTable(card, faces);
    return true;
  }

  /** Decode the file for display; null when the browser cannot (the server may still read it). */
  async function decode(file) {
    try {
      return await createImageBitmap(file);
    } catch (_err) {
      return null;
    }
  }

  function drawResult(card, bitmap, detection) {
    const canvas = card.querySelector(".result-canvas");
    if (!bitmap) {
      canvas.hidden = true;
      return;
    }
    const ratio = Math.min(1, MAX_CANVAS_SIDE / Math.max(bitmap.width, bitmap.height));
    canvas.width = Math.round(bitmap.width * ratio);
    canvas.height = Math.round(bitmap.height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    if (!detection) return;
    // Boxes are in the server's pixels of the original image.
    const scale = {
      x: canvas.width / (detection.width || canvas.width),
      y: canvas.height / (detection.height || canvas.height),
    };
    MW.drawFaces(ctx, detection.faces, scale);
    const faces = detection.faces || [];
    canvas.setAttribute(
      "aria-label",
      faces.length
        ? `photo with ${faces.length} detected face${faces.length === 1 ? "" : "s"}`
        : "photo, no faces found",
    );
  }

  function fillTable(card, faces) {
    const tbody = card.querySelector(".faces-table tbody");
    tbody.replaceChildren();
    if (!faces.length) {
      const td = MW.el("td", { colspan: "5", class: "muted", text: "No faces found." });
      tbody.append(MW.el("tr", { class: "no-faces" }, [td]));
      return;
    }
    faces.forEach((face, i) => {
      const row = MW.el("tr", { class: "face-row", "data-label": face.label }, [
        MW.el("td", { text: String(i + 1) }),
        MW.el("td", {}, [MW.labelBadge(face.label)]),
        MW.el("td", { class: "num", text: MW.formatScore(face.score) }),
        MW.el("td", { class: "num", text: MW.formatScore(face.det_score) }),
        MW.el("td", { class: "num", text: face.box.map((v) => Math.round(v)).join(", ") }),
      ]);
      tbody.append(row);
    });
  }

  // ------------------------------------------------------------ input: picker, drag and drop, paste

  fileInput.addEventListener("change", () => {
    addFiles(fileInput.files);
    fileInput.value = ""; // picking the same file again still fires "change"
  });

  ["dragenter", "dragover"].forEach((type) =>
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    }),
  );
  ["dragleave", "dragend"].forEach((type) =>
    dropZone.addEventListener(type, () => dropZone.classList.remove("dragging")),
  );
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    addFiles(event.dataTransfer && event.dataTransfer.files);
  });
  // A file dropped next to the zone should not make the browser navigate away.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  document.addEventListener("paste", (event) => {
    const files = Array.from((event.clipboardData && event.clipboardData.files) || []);
    if (files.length) addFiles(files);
  });

  clearButton.addEventListener("click", () => {
    results.replaceChildren(
      ...Array.from(results.children).filter((c) => ["pending", "running"].includes(c.dataset.state)),
    );
    done = 0;
    failed = 0;
    emptyNote.hidden = results.children.length > 0;
    clearButton.hidden = results.children.length === 0;
    updateStatus();
  });
})();
