/* Portail — small progressive enhancements shared by every page (no framework; CSP: script-src 'self').
   - the header's menu button on narrow screens (the menu stays open without JavaScript);
   - table cells labelled by their column header, so stacked cards on phones still say what each value is;
   - a show-password toggle beside every password field that asks for one (reveal=True in _macros.html);
   - a strength hint on new passwords, from the same common-password list the server refuses;
   - the menu's unread badge, live on every member page: one Server-Sent Events connection per page
     (the inbox page's own script, notifications.js, opens it there). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var header = document.querySelector("header.top");
    var toggle = document.querySelector(".menu-toggle");
    if (header && toggle) {
      toggle.hidden = false;
      toggle.addEventListener("click", function () {
        var open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
        header.classList.toggle("open", open);
      });
    }
    var inbox = document.querySelector("a.notifications-link[data-stream]");
    if (inbox && window.EventSource && !document.getElementById("notification-list")) {
      var stream = new EventSource(inbox.getAttribute("data-stream"));
      stream.addEventListener("open", function () { inbox.setAttribute("data-live", "open"); });
      stream.addEventListener("notification", function (event) {
        var unread = JSON.parse(event.data).unread;
        document.querySelectorAll("[data-unread]").forEach(function (badge) {
          badge.textContent = String(unread);
          badge.hidden = !unread;
        });
      });
    }
    document.querySelectorAll("main table").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.children, function (cell, i) {
          if (heads[i] && !cell.hasAttribute("data-label")) { cell.setAttribute("data-label", heads[i]); }
        });
      });
    });
    var common = null;
    function loadCommon() {
      if (!common) {
        common = fetch("/password/common.txt").then(function (r) { return r.ok ? r.text() : ""; })
          .then(function (text) { return new Set(text.split("\n").map(function (w) { return w.trim(); })); })
          .catch(function () { return new Set(); });
      }
      return common;
    }
    document.querySelectorAll("input[data-strength]").forEach(function (input) {
      var out = document.getElementById(input.getAttribute("data-strength"));
      var min = parseInt(input.getAttribute("data-min"), 10) || 10;
      function say() {
        var value = input.value;
        if (!value) { out.textContent = ""; return; }
        if (value.length < min) { out.textContent = input.getAttribute("data-short"); return; }
        loadCommon().then(function (words) {
          var lowered = value.trim().toLowerCase();
          var weak = words.has(lowered) || new Set(value).size < 3;
          out.textContent = input.getAttribute(weak ? "data-common" : "data-good");
        });
      }
      input.addEventListener("focus", loadCommon);
      input.addEventListener("input", say);
    });
    document.querySelectorAll("button.password-toggle").forEach(function (button) {
      var input = document.getElementById(button.getAttribute("aria-controls"));
      if (!input) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        var shown = input.type === "text";
        input.type = shown ? "password" : "text";
        button.setAttribute("aria-pressed", shown ? "false" : "true");
      });
    });
  });
})();
