/* maskwatch web UI: the live page (camera → JPEG frames over a WebSocket → boxes on an overlay). */
(function () {
  "use strict";

  const MAX_WIDTH = 640; // frames are scaled down to at most this many pixels wide
  const JPEG_QUALITY = 0.7;
  const FPS_WINDOW_MS = 2000;
  const BUSY_PAUSE_MS = 500;

  const form = document.getElementById("live-form");
  const toggle = document.getElementById("live-toggle");
  const sourceInput = document.getElementById("live-source");
  const deviceSelect = document.getElementById("live-device");
  const video = document.getElementById("live-video");
  const videoWrap = document.getElementById("video-wrap");
  const overlay = document.getElementById("live-overlay");
  const placeholder = document.getElementById("video-placeholder");
  const statusEl = document.getElementById("live-status");
  const errorEl = document.getElementById("live-error");
  const framesEl = document.getElementById("frames-received");
  const fpsEl = document.getElementById("live-fps");
  const elapsedEl = document.getElementById("live-elapsed");
  const roundTripEl = document.getElementById("live-round-trip");
  const sizeEl = document.getElementById("live-size");
  const countsEl = document.getElementById("live-counts");

  const capture = document.createElement("canvas");
  const captureCtx = capture.getContext("2d");

  let stream = null;
  let socket = null;
  let running = false;
  let session = 0; // bumped by every start and stop: a start that was stopped meanwhile gives up
  let received = 0;
  let replyTimes = [];
  let lastReply = null;
  let sentAt = 0;
  let labels = [];

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text || state;
  }

  function showError(text) {
    MW.showMessage(errorEl, text, text ? "error" : "");
  }

  function liveUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams({ source: sourceInput.value.trim() || "webcam" });
    const key = MW.getApiKey();
    if (key) params.set("api_key", key);
    return `${scheme}//${location.host}/api/v1/live?${params}`;
  }

  // ------------------------------------------------------------------ start / stop

  async function start() {
    if (running) return;
    running = true;
    const mine = ++session;
    toggle.textContent = "Stop";
    toggle.setAttribute("aria-pressed", "true");
    sourceInput.disabled = true;
    deviceSelect.disabled = true;
    showError("");
    received = 0;
    replyTimes = [];
    lastReply = null;
    framesEl.textContent = "0";
    fpsEl.textContent = "–";
    setStatus("starting", "starting camera…");

    try {
      labels = (await MW.loadHealth()).labels;
      if (mine !== session) return;
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        throw new Error("this browser cannot use a camera here (it needs https or localhost)");
      }
      const constraints = deviceSelect.value ? { deviceId: { exact: deviceSelect.value } } : { width: { ideal: 1280 } };
      const media = await navigator.mediaDevices.getUserMedia({ video: constraints, audio: false });
      if (mine !== session) {
        media.getTracks().forEach((track) => track.stop());
        return;
      }
      stream = media;
      video.srcObject = stream;
      await video.play();
      if (mine !== session) return;
      if (video.videoWidth && video.videoHeight)
        videoWrap.style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
      placeholder.hidden = true;
      listCameras();
    } catch (err) {
      if (mine === session) fail(`camera: ${MW.oneLine(err.message || err.name)}`);
      return;
    }
    connect();
  }

  function connect() {
    setStatus("connecting", "connecting…");
    socket = new WebSocket(liveUrl());
    socket.binaryType = "arraybuffer";
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      if (!running) return;
      setStatus("running", "running");
      sendFrame();
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", (event) => {
      if (!running || event.target !== socket) return; // closed by stop()
      const reason = event.reason ? MW.oneLine(event.reason) : "";
      if (event.code === 1008 || /api.?key/i.test(reason)) fail(MW.AUTH_MESSAGE);
      else if (!opened) refused();
      else fail(`connection closed${reason ? `: ${reason}` : ""} (code ${event.code})`);
    });
  }

  /** The handshake failed (the browser does not say why): a wrong API key is the usual reason. */
  async function refused() {
    fail("could not open the live connection");
    try {
      await MW.apiFetch("/api/v1/health");
    } catch (err) {
      showError(err.status === 401 ? MW.AUTH_MESSAGE : `could not open the live connection: ${err.message}`);
    }
  }

  function stop(state, text) {
    running = false;
    session += 1;
    const ws = socket;
    socket = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "stopped");
    stopTracks();
    video.srcObject = null;
    placeholder.hidden = false;
    clearOverlay();
    toggle.textContent = "Start";
    toggle.setAttribute("aria-pressed", "false");
    sourceInput.disabled = false;
    deviceSelect.disabled = false;
    fpsEl.textContent = "–";
    setStatus(state || "stopped", text);
  }

  function fail(message) {
    stop("error", "error");
    showError(message);
  }

  function stopTracks() {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
  }

  // ------------------------------------------------------------------ frames

  /** Encode the current video frame and send it; the next one goes out when its reply is in. */
  function sendFrame() {
    if (!running || !socket || socket.readyState !== WebSocket.OPEN) return;
    if (!video.videoWidth || video.readyState < 2) {
      setTimeout(sendFrame, 50);
      return;
    }
    const ratio = Math.min(1, MAX_WIDTH / video.videoWidth);
    capture.width = Math.round(video.videoWidth * ratio);
    capture.height = Math.round(video.videoHeight * ratio);
    captureCtx.drawImage(video, 0, 0, capture.width, capture.height);
    capture.toBlob(
      (blob) => {
        if (!blob || !running || !socket || socket.readyState !== WebSocket.OPEN) {
          if (running) setTimeout(sendFrame, 100);
          return;
        }
        sentAt = performance.now();
        socket.send(blob);
      },
      "image/jpeg",
      JPEG_QUALITY,
    );
  }

  function onMessage(event) {
    if (!running) return;
    let reply;
    try {
      reply = JSON.parse(typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data));
    } catch (_err) {
      reply = { error: "the server sent something that is not JSON" };
    }
    const now = performance.now();
    received += 1;
    framesEl.textContent = String(received);
    replyTimes.push(now);
    while (replyTimes.length && now - replyTimes[0] > FPS_WINDOW_MS) replyTimes.shift();
    if (replyTimes.length > 1) {
      const span = (replyTimes[replyTimes.length - 1] - replyTimes[0]) / 1000;
      fpsEl.textContent = span > 0 ? ((replyTimes.length - 1) / span).toFixed(1) : "–";
    }

    if (reply.error || reply.detail) {
      showError(`frame ${received}: ${MW.oneLine(reply.error || reply.detail)}`);
      if (reply.busy) {
        setTimeout(sendFrame, BUSY_PAUSE_MS); // give the server a moment
        return;
      }
    } else {
      showError("");
      lastReply = reply;
      const server = typeof reply.elapsed_ms === "number" ? `${Math.round(reply.elapsed_ms)} ms` : "–";
      elapsedEl.textContent = server;
      roundTripEl.textContent = `${Math.round(now - sentAt)} ms`;
      sizeEl.textContent = reply.width && reply.height ? `${reply.width}×${reply.height}` : "–";
      drawOverlay();
      showCounts(reply.faces || []);
    }
    sendFrame();
  }

  // ------------------------------------------------------------------ overlay

  function clearOverlay() {
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  }

  /** Size the overlay to the displayed video and draw the latest reply's boxes on it. */
  function drawOverlay() {
    const w = video.clientWidth;
    const h = video.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    if (overlay.width !== Math.round(w * dpr) || overlay.height !== Math.round(h * dpr)) {
      overlay.width = Math.round(w * dpr);
      overlay.height = Math.round(h * dpr);
    }
    clearOverlay();
    if (!lastReply || !lastReply.width || !lastReply.height || !video.videoWidth) return;
    // The video keeps its aspect ratio inside its box (object-fit: contain): find the picture's rectangle.
    const fit = Math.min(w / video.videoWidth, h / video.videoHeight);
    const shownW = video.videoWidth * fit;
    const shownH = video.videoHeight * fit;
    const ctx = overlay.getContext("2d");
    ctx.save();
    ctx.translate(((w - shownW) / 2) * dpr, ((h - shownH) / 2) * dpr);
    MW.drawFaces(ctx, lastReply.faces, {
      x: (shownW * dpr) / lastReply.width,
      y: (shownH * dpr) / lastReply.height,
    });
    ctx.restore();
  }

  function showCounts(faces) {
    const counts = MW.countLabels(faces, labels);
    const items = Object.entries(counts).map(([label, n]) => {
      const li = MW.el("li", { "data-label": label }, [MW.labelBadge(label)]);
      li.append(MW.el("strong", { text: String(n) }));
      return li;
    });
    countsEl.replaceChildren(...items);
    countsEl.dataset.faces = String(faces.length);
  }

  // ------------------------------------------------------------------ cameras

  async function listCameras() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    try {
      const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
      const chosen = deviceSelect.value;
      const options = [MW.el("option", { value: "", text: "default camera" })];
      devices.forEach((d, i) =>
        options.push(MW.el("option", { value: d.deviceId, text: d.label || `camera ${i + 1}` })),
      );
      deviceSelect.replaceChildren(...options);
      deviceSelect.value = chosen;
    } catch (_err) {
      /* keep the default entry */
    }
  }

  // ------------------------------------------------------------------ wiring

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (running) stop("stopped", "stopped");
    else start();
  });
  window.addEventListener("resize", drawOverlay);
  window.addEventListener("pagehide", () => {
    if (running) stop();
  });
})();
