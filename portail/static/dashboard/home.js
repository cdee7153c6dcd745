/* The home page without reloads: the search box filters tiles as you type, and pin/move buttons
   rearrange tiles in place. Without this script the same forms work by plain submission. */
(function () {
  "use strict";
  var fold = function (text) {
    return (text || "").normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  };
  var input = document.getElementById("tile-q");
  var status = document.getElementById("tile-count");

  function filter() {
    if (!input || !status) return;
    var words = fold(input.value).split(/\s+/).filter(Boolean);
    var shown = 0;
    var tiles = document.querySelectorAll("#tiles > li.tile");
    tiles.forEach(function (tile) {
      var haystack = fold(tile.getAttribute("data-search"));
      var match = words.every(function (w) { return haystack.indexOf(w) !== -1; });
      tile.hidden = !match;
      if (match) shown += 1;
    });
    if (!tiles.length) return;
    var text = shown === 0 ? status.dataset.none : shown === 1 ? status.dataset.one
      : status.dataset.many.replace("{count}", String(shown));
    if (status.textContent.trim() !== text) status.textContent = text;
  }

  if (input) {
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(filter, 120);
    });
    if (input.form) {
      input.form.addEventListener("submit", function (event) {
        event.preventDefault();
        filter();
        var url = new URL(window.location.href);
        if (input.value) url.searchParams.set("q", input.value); else url.searchParams.delete("q");
        history.replaceState(null, "", url.pathname + url.search);
      });
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("tile-arrange")) return;
    var submitter = event.submitter;
    if (!submitter || !window.fetch || !window.DOMParser) return;
    event.preventDefault();
    var body = new URLSearchParams(new FormData(form));
    body.set("action", submitter.value);
    if (input) body.set("q", input.value);
    var tileId = form.closest("li.tile").id;
    fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin",
                         headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("tiles");
        var list = document.getElementById("tiles");
        if (!fresh || !list) { window.location.reload(); return; }
        list.replaceWith(document.importNode(fresh, true));
        filter();
        var note = page.querySelector(".flash");
        if (note && status) status.textContent = note.textContent;
        var tile = document.getElementById(tileId);
        var again = tile && (tile.querySelector('button[value="' + submitter.value + '"]:not([disabled])')
          || tile.querySelector(".tile-arrange button:not([disabled])"));
        if (again) again.focus();
      })
      .catch(function () {
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = "action";
        hidden.value = submitter.value;
        form.appendChild(hidden);
        form.submit();
      });
  });
})();
