/* The local cloud's KPI dashboard.
 *
 * Reads GET /kpis on its own origin with `Authorization: Bearer <token>`, the token taken from the URL
 * fragment (/dashboard#token=...&from=YYYY-MM-DD&to=YYYY-MM-DD; the fragment never reaches a server),
 * draws the KPI tiles, the charts (Chart.js, vendored in vendor/) and the per-channel table, and reads
 * again every 10 s. Numbers are written as text into elements with data-* attributes that tests read:
 * data-kpi (tiles), data-metric (single figures), data-channel / data-channel-kpi (table), and each
 * canvas gets data-rendered once Chart.js has drawn it.
 */
(function () {
  "use strict";

  const REFRESH_MS = 10000;
  const FETCH_TIMEOUT_MS = 8000;
  const MAX_HOUR_BARS = 24 * 31; // a longer period is drawn with its hours of data only

  const KPI_LABELS = {
    ingestion_latency_p95_seconds: ["Ingestion latency (p95)", "Latency p95"],
    auto_allocation_rate: ["Auto-allocation rate", "Auto-allocated"],
    first_shipment_on_time_rate: ["First shipment on time", "Shipped on time"],
    exception_order_ratio: ["Exception orders", "Exceptions"],
    orders_per_staff_day: ["Orders per staff-day", "Orders/staff-day"],
    availability: ["Availability", "Availability"],
  };
  const STATUS_TEXT = { ok: "on target", breach: "off target", no_data: "no data", reported: "reported" };
  const REVIEW_SOURCES = ["allocation", "risk", "verification", "quarantine"];
  // One colour per channel, the same in every period; other channels take the spare ones by name.
  const CHANNEL_COLOURS = {
    taobao: "#f28e2b", jd: "#e15759", pdd: "#b07aa1", douyin: "#4e79a7", kuaishou: "#edc948",
    amazon: "#59a14f", aliexpress: "#ff9da7", shopify: "#76b7b2",
  };
  const SPARE_COLOURS = ["#9c755f", "#bab0ac", "#86bcb6", "#d37295", "#a0cbe8", "#8cd17d"];

  const charts = {};
  let inFlight = false;

  // -- the URL fragment ---------------------------------------------------------------------------
  function readFragment() {
    const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    let token = (params.get("token") || "").trim();
    if (/^bearer\s+/i.test(token)) token = token.replace(/^bearer\s+/i, "");
    return { token: token, from: params.get("from") || "", to: params.get("to") || "" };
  }

  function writeFragment(state) {
    const params = new URLSearchParams();
    if (state.token) params.set("token", state.token);
    if (state.from) params.set("from", state.from);
    if (state.to) params.set("to", state.to);
    history.replaceState(null, "", window.location.pathname + window.location.search + "#" + params.toString());
  }

  // -- formatting -----------------------------------------------------------------------------------
  function isRate(name) {
    return /_(rate|ratio)$/.test(name) || name === "availability";
  }

  function trimmed(number, digits) {
    return String(Number(number.toFixed(digits)));
  }

  function formatSeconds(seconds) {
    if (seconds < 120) return trimmed(seconds, 1) + " s";
    if (seconds < 7200) return trimmed(seconds / 60, 1) + " min";
    return trimmed(seconds / 3600, 1) + " h";
  }

  function formatKpi(name, value) {
    if (value === null || value === undefined) return "—";
    if (isRate(name)) return (value * 100).toFixed(2) + "%";
    if (/_seconds$/.test(name)) return formatSeconds(value);
    return Number.isInteger(value) ? String(value) : value.toFixed(2);
  }

  function formatAge(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const total = Math.round(seconds);
    if (total < 60) return total + " s";
    if (total < 3600) return Math.floor(total / 60) + " min " + (total % 60) + " s";
    const hours = Math.floor(total / 3600);
    return hours + " h " + Math.floor((total % 3600) / 60) + " min";
  }

  function formatCount(value) {
    return value === null || value === undefined ? "—" : Number(value).toLocaleString("en-US");
  }

  function bucketBound(seconds) {
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return trimmed(seconds / 60, 1) + " min";
    return trimmed(seconds / 3600, 1) + " h";
  }

  function targetText(target) {
    if (!target || target === "reported") return "no target: reported";
    return "target " + String(target).replace(/>=/g, "≥").replace(/<=/g, "≤");
  }

  function kpiLabel(name, short) {
    const labels = KPI_LABELS[name];
    return labels ? labels[short ? 1 : 0] : name.replace(/_/g, " ");
  }

  function channelColour(channel, index) {
    return CHANNEL_COLOURS[channel] || SPARE_COLOURS[index % SPARE_COLOURS.length];
  }

  // -- the DOM --------------------------------------------------------------------------------------
  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setMetric(name, text) {
    for (const node of document.querySelectorAll('[data-metric="' + name + '"]')) node.textContent = text;
  }

  // parts: strings, or {code: "..."} shown as code
  function showMessage(state, parts) {
    const box = document.getElementById("message");
    box.replaceChildren(...parts.map((part) => (typeof part === "string" ? document.createTextNode(part)
      : element("code", {}, part.code))));
    box.dataset.state = state;
    box.hidden = false;
  }

  function hideMessage() {
    const box = document.getElementById("message");
    box.hidden = true;
    box.dataset.state = "";
    box.replaceChildren();
  }

  // -- the data -------------------------------------------------------------------------------------
  function salesChannels(data) {
    const names = new Set(Object.keys(data.channels || {}));
    for (const hour of data.hours || []) for (const name of Object.keys(hour.channels || {})) names.add(name);
    // `_system` and the like count handler invocations, not a channel's sales.
    return [...names].filter((name) => !name.startsWith("_")).sort();
  }

  function countsOf(entry) {
    return (entry && (entry.counts || entry)) || {};
  }

  // The hours from the first to the last one with data, the empty ones as zeros (hours holds only
  // hours with data).
  function hourSlots(hours) {
    if (!hours.length) return [];
    const first = Date.parse(hours[0].hour), last = Date.parse(hours[hours.length - 1].hour);
    const span = Math.round((last - first) / 3600000) + 1;
    if (!(span > 0) || span > MAX_HOUR_BARS) return hours.map((hour) => hour.hour);
    const slots = [];
    for (let index = 0; index < span; index += 1) {
      slots.push(new Date(first + index * 3600000).toISOString().replace(/\.\d{3}Z$/, "Z"));
    }
    return slots;
  }

  function hourLabel(iso, withDay) {
    const time = iso.slice(11, 16);
    return withDay ? iso.slice(5, 10) + " " + time : time;
  }

  // -- rendering ------------------------------------------------------------------------------------
  function renderTiles(kpis) {
    const tiles = kpis.map((kpi) => {
      const tile = element("article", { class: "tile", "data-kpi-tile": kpi.name, "data-status": kpi.status });
      tile.append(
        element("span", { class: "kpi-label" }, kpiLabel(kpi.name, false)),
        element("span", { class: "kpi-value", "data-kpi": kpi.name, "data-status": kpi.status },
          formatKpi(kpi.name, kpi.value)),
        element("span", { class: "kpi-target" }, targetText(kpi.target)),
        element("span", { class: "badge", "data-status": kpi.status }, STATUS_TEXT[kpi.status] || kpi.status),
      );
      return tile;
    });
    document.getElementById("kpi-tiles").replaceChildren(...tiles);
  }

  function renderTable(data, channels) {
    const names = ((data.overall || {}).kpis || []).map((kpi) => kpi.name);
    const head = [element("th", { scope: "col" }, "Channel"),
      element("th", { scope: "col", class: "num" }, "Orders stored")];
    for (const name of names) {
      head.push(element("th", { scope: "col", class: "num", title: name }, kpiLabel(name, true)));
    }
    document.getElementById("channel-head").replaceChildren(...head);
    const rows = channels.filter((name) => data.channels && data.channels[name]).map((name) => {
      const channel = data.channels[name];
      const byName = Object.fromEntries((channel.kpis || []).map((kpi) => [kpi.name, kpi]));
      const row = element("tr", { "data-channel": name });
      row.append(element("td", { class: "channel-name" }, name),
        element("td", { class: "num", "data-channel-count": "orders_stored" }, formatCount(countsOf(channel).orders_stored)));
      for (const kpiName of names) {
        const kpi = byName[kpiName] || { name: kpiName, value: null, status: "no_data", target: "" };
        row.append(element("td", { class: "kpi-cell", "data-channel-kpi": kpiName, "data-status": kpi.status,
          title: (STATUS_TEXT[kpi.status] || kpi.status) + " · " + targetText(kpi.target) },
        formatKpi(kpiName, kpi.value)));
      }
      return row;
    });
    if (!rows.length) {
      const empty = element("tr");
      empty.append(element("td", { colspan: String(names.length + 2) }, "No channel has data in this period."));
      rows.push(empty);
    }
    document.getElementById("channel-rows").replaceChildren(...rows);
  }

  function upsertChart(id, config) {
    const chart = charts[id];
    if (chart) {
      chart.data = config.data;
      chart.options = config.options;
      chart.update("none");
    } else {
      charts[id] = new window.Chart(document.getElementById(id), config);
    }
  }

  function baseOptions(extra) {
    return Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, extra);
  }

  function renderOrdersChart(data, channels) {
    const hours = data.hours || [];
    const byHour = new Map(hours.map((hour) => [hour.hour, hour.channels || {}]));
    const slots = hourSlots(hours);
    const withDay = data.from !== data.to || new Set(slots.map((slot) => slot.slice(0, 10))).size > 1;
    const datasets = channels.map((name, index) => ({
      label: name,
      data: slots.map((slot) => countsOf((byHour.get(slot) || {})[name]).orders_stored || 0),
      backgroundColor: channelColour(name, index),
      borderWidth: 0,
      maxBarThickness: 48,
    }));
    document.getElementById("orders-empty").hidden = slots.length > 0;
    upsertChart("chart-orders", {
      type: "bar",
      data: { labels: slots.map((slot) => hourLabel(slot, withDay)), datasets: datasets },
      options: baseOptions({
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "right" } },
        scales: {
          x: { stacked: true, grid: { display: false } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: "orders stored" },
            ticks: { precision: 0 } },
        },
      }),
    });
  }

  function renderLatencyChart(histogram) {
    const bounds = (histogram && histogram.bounds_seconds) || [];
    const counts = (histogram && histogram.counts) || [];
    const labels = counts.map((_, index) => (index < bounds.length ? "≤ " + bucketBound(bounds[index])
      : "> " + bucketBound(bounds[bounds.length - 1])));
    const ranges = counts.map((_, index) => {
      if (index === 0) return "up to " + bucketBound(bounds[0]);
      if (index < bounds.length) return bucketBound(bounds[index - 1]) + " to " + bucketBound(bounds[index]);
      return "over " + bucketBound(bounds[bounds.length - 1]);
    });
    upsertChart("chart-latency", {
      type: "bar",
      data: { labels: labels, datasets: [{ label: "orders", data: counts, backgroundColor: "#4e79a7" }] },
      options: baseOptions({
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { title: (items) => ranges[items[0].dataIndex] } },
        },
        scales: {
          x: { grid: { display: false }, title: { display: true, text: "paid on the channel → stored" } },
          y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "orders" } },
        },
      }),
    });
  }

  function renderAllocationChart(outcomes) {
    const automatic = outcomes.allocated_automatically || 0, review = outcomes.sent_to_review || 0;
    setMetric("allocated_automatically", formatCount(outcomes.allocated_automatically));
    setMetric("sent_to_review", formatCount(outcomes.sent_to_review));
    upsertChart("chart-allocation", {
      type: "bar",
      data: {
        labels: ["automatically", "to review"],
        datasets: [{ label: "orders", data: [automatic, review], backgroundColor: ["#1e8e4f", "#f0a202"] }],
      },
      options: baseOptions({
        indexAxis: "y",
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { grid: { display: false } } },
      }),
    });
  }

  function renderReview(queue, riskHolds) {
    setMetric("review_open_items", formatCount(queue.open_items));
    setMetric("review_oldest_age", formatAge(queue.open_items ? queue.oldest_open_age_seconds : null));
    setMetric("risk_holds", formatCount(riskHolds));
    const bySource = queue.by_source || {};
    const sources = REVIEW_SOURCES.concat(Object.keys(bySource).filter((name) => !REVIEW_SOURCES.includes(name)).sort());
    upsertChart("chart-review", {
      type: "bar",
      data: {
        labels: sources,
        datasets: [{ label: "open items", data: sources.map((name) => bySource[name] || 0),
          backgroundColor: ["#f0a202", "#c62828", "#4e79a7", "#6b7685", "#9c755f", "#86bcb6"] }],
      },
      options: baseOptions({
        indexAxis: "y",
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { grid: { display: false } } },
      }),
    });
  }

  function render(data) {
    const channels = salesChannels(data);
    renderTiles((data.overall || {}).kpis || []);
    renderOrdersChart(data, channels);
    renderLatencyChart(data.latency_histogram);
    renderAllocationChart(data.allocation_outcomes || {});
    renderReview(data.review_queue || {}, data.risk_holds);
    renderTable(data, channels);

    const shown = document.getElementById("period-shown");
    shown.textContent = data.from === data.to ? data.from : data.from + " – " + data.to;
    shown.dataset.period = data.from + "/" + data.to;
    const updated = document.getElementById("updated");
    updated.textContent = "data as of " + String(data.generated_at || "").replace(/(\.\d+)?Z$/, " UTC").replace("T", " ");
    updated.dataset.generatedAt = data.generated_at || "";
    const state = readFragment();
    const from = document.getElementById("from"), to = document.getElementById("to");
    if (document.activeElement !== from) from.value = state.from || data.from || "";
    if (document.activeElement !== to) to.value = state.to || data.to || "";
  }

  // -- loading --------------------------------------------------------------------------------------
  async function problemText(response) {
    try {
      const body = await response.json();
      return body.message || body.detail || body.error || JSON.stringify(body);
    } catch (error) {
      return response.statusText || "no details";
    }
  }

  function showProblem(status, detail) {
    if (status === 401) {
      showMessage("unauthorized", ["The API refused the token (401: " + detail + "). Tokens last an hour: make a new one with ",
        { code: "oms local token --role reviewer" }, " and open ", { code: "/dashboard#token=<token>" }, "."]);
    } else if (status === 403) {
      showMessage("unauthorized", ["This token may not read the KPIs (403: " + detail + ")."]);
    } else if (status < 500) {
      showMessage("error", ["The KPI request was refused (" + status + ": " + detail + ")."]);
    } else {
      showMessage("error", ["The KPI API failed (" + status + ": " + detail + "); trying again every 10 s."]);
    }
  }

  async function load() {
    if (inFlight) return;
    const state = readFragment();
    if (!state.token) {
      document.body.dataset.state = "no-token";
      showMessage("no-token", ["No token: the KPIs need a reviewer's token. Open this page as ",
        { code: "/dashboard#token=<token>" }, " (", { code: "oms local up" }, " prints that link; ",
        { code: "oms local token --role reviewer" }, " makes a token)."]);
      return;
    }
    inFlight = true;
    const query = new URLSearchParams();
    if (state.from) query.set("from", state.from);
    if (state.to) query.set("to", state.to);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      const response = await fetch("/kpis" + (query.toString() ? "?" + query.toString() : ""), {
        headers: { Authorization: "Bearer " + state.token, Accept: "application/json" },
        cache: "no-store",
        signal: controller.signal,
      });
      if (!response.ok) {
        showProblem(response.status, await problemText(response));
        document.body.dataset.state = response.status === 401 || response.status === 403 ? "unauthorized" : "error";
        document.body.classList.add("stale");
        return;
      }
      const data = await response.json();
      document.body.classList.add("loaded"); // visible first: Chart.js sizes a chart by its box
      document.body.classList.remove("stale");
      render(data);
      hideMessage();
      document.body.dataset.state = "ready";
    } catch (error) {
      showMessage("error", ["Cannot read the KPIs (" + (error.name === "AbortError" ? "no answer in 8 s" : error.message)
        + "). Is ", { code: "oms local up" }, " still running? Trying again every 10 s."]);
      document.body.dataset.state = "error";
      document.body.classList.add("stale");
    } finally {
      clearTimeout(timer);
      inFlight = false;
    }
  }

  // -- start ----------------------------------------------------------------------------------------
  function start() {
    if (!window.Chart) {
      showMessage("error", ["The chart library did not load (/dashboard/vendor/chart.umd.min.js)."]);
      document.body.dataset.state = "error";
      return;
    }
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#5d6b7e";
    // Marks each canvas once Chart.js has drawn it, with its series: what the page test reads.
    window.Chart.register({
      id: "omsRenderedMarker",
      afterRender(chart) {
        chart.canvas.dataset.rendered = "true";
        chart.canvas.dataset.series = chart.data.datasets.map((dataset) => dataset.label).join(",");
        chart.canvas.dataset.points = String(chart.data.labels.length);
        document.body.dataset.charts = String(document.querySelectorAll("canvas[data-rendered]").length);
      },
    });

    document.getElementById("period").addEventListener("submit", (event) => {
      event.preventDefault();
      const state = readFragment();
      state.from = document.getElementById("from").value;
      state.to = document.getElementById("to").value;
      writeFragment(state);
      load();
    });
    document.getElementById("today").addEventListener("click", () => {
      const state = readFragment();
      state.from = state.to = "";
      document.getElementById("from").value = document.getElementById("to").value = "";
      writeFragment(state);
      load();
    });
    const state = readFragment();
    document.getElementById("from").value = state.from;
    document.getElementById("to").value = state.to;
    window.addEventListener("hashchange", load);
    load();
    setInterval(load, REFRESH_MS);
  }

  start();
})();
