// The mention page: a live countdown, the composer's template picker, character counter
// and preview, and "copy and mark responded". No HTML is ever built from text: every
// customer- or agent-written string goes through textContent or a form value.
"use strict";

(function () {
  // ---- countdown: the server's now plus the seconds since the page loaded ----------
  function shortDuration(ms) {
    var seconds = Math.floor(Math.abs(ms) / 1000);
    var days = Math.floor(seconds / 86400);
    var hours = Math.floor((seconds % 86400) / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    if (days) return hours ? days + "d " + hours + "h" : days + "d";
    if (hours) return hours + "h " + (minutes < 10 ? "0" : "") + minutes + "m";
    if (minutes) return minutes + "m";
    return "<1m";
  }

  function startCountdown(el) {
    var deadline = Date.parse(el.dataset.deadline);
    var atRisk = el.dataset.atRisk ? Date.parse(el.dataset.atRisk) : null;
    var offset = Date.parse(el.dataset.now) - Date.now();
    var box = document.getElementById("sla");
    function tick() {
      var now = Date.now() + offset;
      var left = deadline - now;
      var words = left >= 0 ? el.dataset.left : el.dataset.over;
      el.textContent = words.replace("{d}", shortDuration(left));
      var state = left < 0 ? "breached" : (atRisk !== null && now >= atRisk ? "at_risk" : "on_track");
      if (box) {
        box.classList.remove("sla-on_track", "sla-at_risk", "sla-breached");
        box.classList.add("sla-" + state);
      }
    }
    tick();
    window.setInterval(tick, 1000);
  }

  // ---- composer -------------------------------------------------------------------
  // The same count as responders/limits.py (the server checks it again before sending):
  // "x" counts links as 23 and characters outside the light ranges as 2, "mastodon"
  // counts links as 23 and @user@server as @user, "plain" counts code points.
  var URL_PATTERN = /\b(?:https?:\/\/|www\.)[^\s<>"']+/gi;
  var TRAILING = ".,:;!?)]}'\"";
  var FEDIVERSE_MENTION = /(?<![\p{L}\p{N}_@])(@[\p{L}\p{N}_]+)@[\p{L}\p{N}_.-]*[\p{L}\p{N}_]/gu;
  var X_LIGHT = [[0, 4351], [8192, 8205], [8208, 8223], [8242, 8247]];

  function plainLength(rule, text) {
    var length = 0;
    Array.from(text).forEach(function (ch) {
      var code = ch.codePointAt(0);
      var light = rule !== "x" || X_LIGHT.some(function (r) { return code >= r[0] && code <= r[1]; });
      length += light ? 1 : 2;
    });
    return length;
  }

  function measure(rule, text, linkLength) {
    text = text.normalize("NFC");
    if (rule === "plain") return Array.from(text).length;
    if (rule === "mastodon") text = text.replace(FEDIVERSE_MENTION, "$1");
    var length = 0;
    var start = 0;
    var match;
    URL_PATTERN.lastIndex = 0;
    while ((match = URL_PATTERN.exec(text)) !== null) {
      var link = match[0];
      while (link && TRAILING.indexOf(link.charAt(link.length - 1)) >= 0) link = link.slice(0, -1);
      length += plainLength(rule, text.slice(start, match.index)) + linkLength;
      start = match.index + link.length;
    }
    return length + plainLength(rule, text.slice(start));
  }

  function setupComposer() {
    var textarea = document.getElementById("reply-text");
    if (!textarea) return;
    var count = document.getElementById("count");
    var counter = document.getElementById("counter");
    var preview = document.getElementById("preview");
    var limitEl = document.getElementById("limit");

    function refresh() {
      var limit = parseInt(textarea.dataset.limit || "", 10);
      var linkLength = parseInt(textarea.dataset.linkLength || "23", 10);
      var length = measure(textarea.dataset.rule || "plain", textarea.value, linkLength);
      count.textContent = String(length);
      if (limitEl) limitEl.textContent = isNaN(limit) ? "" : String(limit);
      counter.classList.toggle("over", !isNaN(limit) && length > limit);
      preview.textContent = textarea.value; // the text as posted, never parsed as HTML
    }
    textarea.addEventListener("input", refresh);
    refresh();

    var picker = document.getElementById("template-form");
    var intent = document.getElementById("intent");
    var lang = document.getElementById("reply-lang");
    function fetchDraft(event) {
      if (event) event.preventDefault();
      if (!intent.value) return;
      var url = picker.dataset.draftUrl + "?intent=" + encodeURIComponent(intent.value) +
        "&lang=" + encodeURIComponent(lang.value);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (draft) {
          if (!draft) return;
          textarea.value = draft.text;
          if (draft.limit !== null && draft.limit !== undefined) {
            textarea.dataset.limit = String(draft.limit);
          }
          refresh();
        });
    }
    picker.addEventListener("submit", fetchDraft);
    intent.addEventListener("change", fetchDraft);
    lang.addEventListener("change", fetchDraft);

    // Copy first, then let the form mark the mention responded with the text as note.
    var form = document.getElementById("reply-form");
    var copied = false;
    form.addEventListener("submit", function (event) {
      var button = event.submitter;
      if (!button || !button.hasAttribute("data-copy") || copied) return;
      event.preventDefault();
      var done = function () {
        copied = true;
        form.requestSubmit(button);
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(textarea.value).then(done, done);
      } else {
        done();
      }
    });
  }

  var countdown = document.getElementById("countdown");
  if (countdown) startCountdown(countdown);
  setupComposer();
})();
