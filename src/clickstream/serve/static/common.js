// Shared by the dashboard and the status page: JSON fetch, number/time formatting, the SSE stream.
"use strict";

const CS = (() => {
  const NO_WATERMARK = -9.2e18; // -2**63 arrives as a rounded float; anything this low means "none"
  const END_WATERMARK = 9.2e18;

  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) {
      // the server says why in `detail` (503: the results file is unreadable for now; 401: token)
      const detail = await response.json().then((body) => body.detail, () => null);
      const error = new Error(`${url}: HTTP ${response.status}${detail ? ` - ${detail}` : ""}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  function fmtInt(value) {
    return value === null || value === undefined ? "—" : integer.format(value);
  }

  function fmtRate(value) {
    if (value === null || value === undefined) return "—";
    return (value >= 100 ? integer : decimal).format(value);
  }

  function fmtWatermark(ms) {
    if (ms === null || ms === undefined || ms <= NO_WATERMARK) return "—";
    if (ms >= END_WATERMARK) return "end of input";
    return utc(ms);
  }

  function utc(ms) {
    // Milliseconds only when there are any: watermarks often sit on whole seconds.
    return new Date(ms).toISOString().replace("T", " ").replace(/\.000Z$/, "Z");
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return `${d} d ${h} h`;
    return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
  }

  function clock() {
    return new Date().toLocaleTimeString("en-GB", { hour12: false });
  }

  // Opens /api/events; the browser reconnects by itself, `onOpen` runs after every (re)connect so
  // the page can re-fetch whatever it may have missed while disconnected.
  function connect({ onOpen, onChange, onStatus }) {
    const indicator = document.getElementById("live");
    const label = document.getElementById("live-label");
    const source = new EventSource("/api/events");
    const setLive = (connected, text) => {
      if (indicator) indicator.dataset.connected = String(connected);
      if (label) label.textContent = text;
    };
    source.onopen = () => {
      setLive(true, "live");
      if (onOpen) onOpen();
    };
    source.onerror = () => setLive(false, "reconnecting…");
    if (onChange) {
      source.addEventListener("change", (event) => onChange(JSON.parse(event.data).tables));
    }
    if (onStatus) {
      source.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
    }
    return source;
  }

  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  return { getJSON, fmtInt, fmtRate, fmtWatermark, fmtDuration, clock, connect, el, utc };
})();
