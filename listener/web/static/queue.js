// The queue page, kept current without reloading.
//
// Every second: each row's time left is written again from its data-deadline and the
// server's clock (data-now), and the row turns amber (at_risk) and red (breached) on its
// own. When the live feed (/events) says mentions changed, the rows are read again for
// this page's own filters (data-fragment) and swapped in, keeping the scroll position.
// Events carry ids only; what is shown always comes from the server's escaped HTML.
"use strict";

(() => {
  const DEBOUNCE_MS = 250;
  const NOTICE_MS = 8000;
  let skew = 0; // server clock minus this browser's clock, in ms
  let words = null;

  const region = () => document.getElementById("queue-live");

  function learn(live) {
    skew = Date.parse(live.dataset.now) - Date.now();
    words = {
      left: live.dataset.left,
      overdue: live.dataset.overdue,
      fresh: live.dataset.new,
      units: JSON.parse(live.dataset.units),
    };
  }

  function fill(template, name, value) {
    return template.split("{" + name + "}").join(String(value));
  }

  // The same as dashboard.span(): "2d 3h", "1h 05m", "12m", "45s".
  function span(seconds) {
    const total = Math.floor(Math.abs(seconds));
    const days = Math.floor(total / 86400);
    const hours = Math.floor((total % 86400) / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const unit = (name, n) => fill(words.units[name], "n", n);
    if (days) return hours ? unit("d", days) + " " + unit("h", hours) : unit("d", days);
    if (hours) return unit("h", hours) + " " + unit("m", String(minutes).padStart(2, "0"));
    if (minutes) return unit("m", minutes);
    return unit("s", total % 60);
  }

  function stateAt(now, deadline, atRisk) {
    if (now >= deadline) return "breached";
    if (atRisk !== null && now >= atRisk) return "at_risk";
    return "on_track";
  }

  function tick() {
    if (!words) return;
    const now = Date.now() + skew;
    for (const cell of document.querySelectorAll("#queue td.left[data-deadline]")) {
      const deadline = Date.parse(cell.dataset.deadline);
      const atRisk = cell.dataset.atRisk ? Date.parse(cell.dataset.atRisk) : null;
      const left = (deadline - now) / 1000;
      const text = fill(left > 0 ? words.left : words.overdue, "t", span(left));
      const shown = cell.querySelector(".countdown");
      if (shown && shown.textContent !== text) shown.textContent = text;
      const row = cell.closest("tr");
      const state = stateAt(now, deadline, atRisk);
      if (row && row.dataset.state !== state) {
        row.classList.remove("state-" + row.dataset.state);
        row.classList.add("state-" + state);
        row.dataset.state = state;
      }
    }
  }

  function rowIds(live) {
    return Array.from(live.querySelectorAll("tr.mention"), (row) => row.dataset.id);
  }

  function setStatus(kind) {
    const status = document.getElementById("live-status");
    if (status) status.textContent = status.dataset[kind] || "";
  }

  let noticeTimer = null;
  function announce(count) {
    const notice = document.getElementById("live-notice");
    if (!notice || !count) return;
    notice.textContent = fill(words.fresh, "n", count);
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { notice.hidden = true; }, NOTICE_MS);
  }

  let timer = null;
  let busy = false;
  let again = false;

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(reread, DEBOUNCE_MS);
  }

  async function reread() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const live = region();
      if (!live) return;
      const response = await fetch(live.dataset.fragment, {
        headers: { Accept: "text/html" }, credentials: "same-origin", cache: "no-store",
      });
      const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = parsed.getElementById("queue-live");
      if (!fresh) { setStatus("stopped"); return; } // signed out: the login page came back
      const seen = new Set(rowIds(live));
      const x = window.scrollX;
      const y = window.scrollY;
      const adopted = document.adoptNode(fresh);
      live.replaceWith(adopted);
      window.scrollTo(x, y);
      learn(adopted);
      tick();
      const added = rowIds(adopted).filter((id) => !seen.has(id));
      for (const id of added) {
        const row = adopted.querySelector('tr.mention[data-id="' + id + '"]');
        if (row) row.classList.add("fresh");
      }
      announce(added.length);
    } catch (error) {
      setStatus("reconnecting");
    } finally {
      busy = false;
      if (again) { again = false; soon(); }
    }
  }

  function listen() {
    if (!window.EventSource) return;
    const source = new EventSource("/events");
    let opened = false;
    source.addEventListener("open", () => {
      if (opened) soon(); // back after a break: catch up on what was missed
      opened = true;
      setStatus("live");
    });
    source.addEventListener("message", (event) => {
      let data = null;
      try { data = JSON.parse(event.data); } catch (error) { return; }
      if (data && data.kind === "mention") soon();
    });
    source.addEventListener("error", () => {
      setStatus(source.readyState === EventSource.CLOSED ? "stopped" : "reconnecting");
    });
  }

  function autoSubmit() {
    const form = document.getElementById("filters");
    if (!form) return;
    form.addEventListener("change", (event) => {
      if (event.target instanceof HTMLSelectElement) form.requestSubmit();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const live = region();
    if (!live) return;
    learn(live);
    setInterval(tick, 1000);
    autoSubmit();
    listen();
  });
})();
