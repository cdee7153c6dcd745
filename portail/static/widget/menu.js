/* Portail En commun — the navigation menu ("gaufre") that every tool can embed with one tag:

     <script src="https://portail.encommun.example/widget/menu.js" defer></script>

   It draws a button (in a shadow DOM: no style leaks in or out) that opens the member's tools, with
   their unread notification count, read from {portal}/widget/menu.json with the member's Portail
   session (the tool must be a registered, active instance on the same site as Portail).
   Optional: put an element with the attribute data-portail-menu where the button should go;
   otherwise it floats in the top right corner. No framework, no external asset, no inline style
   in the page (the tool's CSP needs script-src, connect-src and img-src for Portail's origin). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src || window.__portailMenu) return;
  window.__portailMenu = true;
  var portal = new URL(script.src).origin;
  var WAIT_MS = Number(script.getAttribute("data-timeout-ms")) || 8000;  // how long to wait for Portail
  var english = (document.documentElement.lang || navigator.language || "fr").slice(0, 2).toLowerCase() === "en";
  var labels = english ? {
    button: "My En commun tools", menu: "My tools", portal: "Open the portal", notifications: "Notifications",
    account: "My account", empty: "No tools yet.", current: "you are here", down: "out of service", demo: "demo",
    login: "Log in to Portail", close: "Close the menu", loading: "Loading…", error: "The menu is unavailable.",
    unread_one: "1 unread notification", unread_many: "{count} unread notifications",
    review: "Portail changed its privacy policy: read it before going on.", review_link: "Read the policy"
  } : {
    button: "Mes outils En commun", menu: "Mes outils", portal: "Ouvrir le portail", notifications: "Notifications",
    account: "Mon compte", empty: "Aucun outil pour l’instant.", current: "vous êtes ici", down: "hors service", demo: "démonstration",
    login: "Se connecter à Portail", close: "Fermer le menu", loading: "Chargement…",
    error: "Le menu n’est pas disponible.", unread_one: "1 notification non lue",
    unread_many: "{count} notifications non lues",
    review: "Portail a changé sa politique de confidentialité : lisez-la avant de continuer.",
    review_link: "Lire la politique"
  };

  var CSS = [
    ":host { all: initial; display: inline-block; font: 15px/1.4 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1d2327; }",
    ":host([data-floating]) { position: fixed; top: .5em; right: .5em; z-index: 2147483000; }",
    ".wrap { position: relative; }",
    "button.toggle { display: inline-flex; align-items: center; gap: .35em; min-width: 2.75em; min-height: 2.75em; padding: .4em .55em; border: 1px solid #0b5c4a; border-radius: .5em; background: #fff; color: #0b5c4a; cursor: pointer; font: inherit; }",
    "button.toggle:hover { background: #e8f3ef; }",
    "button:focus-visible, a:focus-visible { outline: 3px solid #e0a100; outline-offset: 2px; }",
    ".count { min-width: 1.3em; padding: 0 .35em; border-radius: 1em; background: #a4161a; color: #fff; font-size: .8em; font-weight: 700; text-align: center; }",
    ".panel { position: absolute; right: 0; top: calc(100% + .35em); width: min(352px, calc(100vw - 16px)); max-height: 75vh; overflow: auto; background: #fff; color: #1d2327; border: 1px solid #c9cfc6; border-radius: .5em; box-shadow: 0 6px 24px rgba(0,0,0,.18); padding: .5em; box-sizing: border-box; }",
    ".panel[hidden] { display: none; }",
    ".panel.start { right: auto; left: 0; }",
    ".title { font-weight: 700; margin: .25em .4em .5em; font-size: 1em; }",
    "ul { list-style: none; margin: 0; padding: 0; }",
    "li a { display: flex; gap: .6em; align-items: center; padding: .45em .4em; border-radius: .4em; color: #1d2327; text-decoration: none; }",
    "li a:hover, li a:focus { background: #e8f3ef; }",
    "li a[aria-current] { background: #f0f2ee; }",
    "img { width: 28px; height: 28px; border-radius: .35em; flex: none; }",
    ".name { font-weight: 600; display: block; }",
    ".sub { display: block; font-size: .82em; color: #4a5560; }",
    ".down { color: #a4161a; font-weight: 600; }",
    ".demo { color: #7a4a00; }",
    ".foot { display: flex; flex-wrap: wrap; gap: .5em 1em; border-top: 1px solid #c9cfc6; margin-top: .5em; padding: .5em .4em 0; }",
    ".foot a { color: #0b5c4a; }",
    ".note { margin: .4em; color: #4a5560; }"
  ].join("\n");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function safeUrl(value) {
    try {
      var url = new URL(String(value), portal);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function start() {
    var host = document.querySelector("[data-portail-menu]");
    if (!host) {
      host = document.createElement("div");
      host.setAttribute("data-floating", "");
      document.body.appendChild(host);
    }
    host.setAttribute("data-state", "loading");
    var root = host.attachShadow({ mode: "open" });
    if ("adoptedStyleSheets" in root && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", { text: CSS }));
    }
    var grid = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    grid.setAttribute("viewBox", "0 0 24 24");
    grid.setAttribute("width", "22");
    grid.setAttribute("height", "22");
    grid.setAttribute("aria-hidden", "true");
    grid.setAttribute("focusable", "false");
    [3, 10, 17].forEach(function (y) {
      [3, 10, 17].forEach(function (x) {
        var dot = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        dot.setAttribute("x", String(x));
        dot.setAttribute("y", String(y));
        dot.setAttribute("width", "4");
        dot.setAttribute("height", "4");
        dot.setAttribute("rx", "1");
        dot.setAttribute("fill", "currentColor");
        grid.appendChild(dot);
      });
    });
    var count = el("span", { "class": "count", "aria-hidden": "true" });
    count.hidden = true;
    var toggle = el("button", { type: "button", "class": "toggle", "aria-expanded": "false",
                                "aria-controls": "portail-menu-panel", "aria-label": labels.button }, [grid, count]);
    var panel = el("div", { id: "portail-menu-panel", "class": "panel" });
    panel.hidden = true;
    panel.appendChild(el("p", { "class": "note", text: labels.loading }));
    root.appendChild(el("div", { "class": "wrap" }, [toggle, panel]));

    function links() { return Array.prototype.slice.call(panel.querySelectorAll("a")); }

    function open(focusFirst) {
      // Open towards the side of the page that has room (the button may sit anywhere in the tool).
      var box = toggle.getBoundingClientRect();
      panel.classList.toggle("start", box.right < Math.min(352, window.innerWidth - 16));
      panel.hidden = false;
      toggle.setAttribute("aria-expanded", "true");
      if (focusFirst && links()[0]) links()[0].focus();
    }

    function close(refocus) {
      panel.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
      if (refocus) toggle.focus();
    }

    toggle.addEventListener("click", function () {
      if (panel.hidden) open(false); else close(false);
    });
    toggle.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") { event.preventDefault(); open(true); }
      if (event.key === "Escape" && !panel.hidden) { event.preventDefault(); close(true); }
    });
    panel.addEventListener("keydown", function (event) {
      var items = links();
      var index = items.indexOf(root.activeElement);
      var next = null;
      if (event.key === "Escape") { event.preventDefault(); close(true); return; }
      if (event.key === "ArrowDown") next = items[(index + 1) % items.length];
      if (event.key === "ArrowUp") next = items[(index - 1 + items.length) % items.length];
      if (event.key === "Home") next = items[0];
      if (event.key === "End") next = items[items.length - 1];
      if (next) { event.preventDefault(); next.focus(); }
    });
    document.addEventListener("click", function (event) {
      if (!panel.hidden && event.composedPath().indexOf(host) === -1) close(false);
    });
    root.addEventListener("focusout", function (event) {
      var to = event.relatedTarget;
      if (!panel.hidden && to && !root.contains(to)) close(false);
    });

    function setUnread(n) {
      var value = typeof n === "number" && n > 0 ? n : 0;
      count.hidden = value === 0;
      count.textContent = value > 99 ? "99+" : String(value);
      toggle.setAttribute("aria-label", labels.button + (value === 0 ? "" : ", " + (value === 1 ? labels.unread_one
        : labels.unread_many.replace("{count}", String(value)))));
    }

    function render(data) {
      panel.textContent = "";
      panel.appendChild(el("p", { "class": "title", id: "portail-menu-title", text: labels.menu }));
      var list = el("ul", {});
      (data.tools || []).forEach(function (tool) {
        var href = safeUrl(tool.url);
        if (!href) return;
        var icon = safeUrl(tool.icon);
        var label = tool.software_label === tool.name ? "" : tool.software_label;
        var sub = [label, tool.hoster].filter(Boolean).join(" · ");
        var attrs = { href: href };
        if (tool.current) attrs["aria-current"] = "true";
        var parts = [el("span", { "class": "name", text: tool.name })];
        if (sub) parts.push(el("span", { "class": "sub", text: sub }));
        // Only a tool that was reached and stopped answering is "down"; a demo entry says so; a tool
        // not reached yet says nothing (portail/federation/availability.py). Words and icon, not colour alone.
        if (tool.health === "down") parts.push(el("span", { "class": "sub down", text: "✕ " + labels.down }));
        if (tool.health === "demo") parts.push(el("span", { "class": "sub demo", text: "◇ " + labels.demo }));
        if (tool.current) parts.push(el("span", { "class": "sub", text: labels.current }));
        list.appendChild(el("li", {}, [el("a", attrs, [
          icon ? el("img", { src: icon, alt: "", width: "28", height: "28" }) : null,
          el("span", {}, parts)
        ])]));
      });
      var nav = el("nav", { "aria-labelledby": "portail-menu-title" }, [list]);
      panel.appendChild(nav);
      if (!list.children.length) panel.appendChild(el("p", { "class": "note", text: labels.empty }));
      var portalUrl = safeUrl(data.portal && data.portal.url) || portal + "/";
      var notificationsUrl = safeUrl(data.notifications_url) || portalUrl;
      panel.appendChild(el("p", { "class": "foot" }, [
        el("a", { href: portalUrl, text: labels.portal }),
        el("a", { href: notificationsUrl, text: labels.notifications + (data.unread ? " (" + data.unread + ")" : "") })
      ]));
      setUnread(data.unread);
    }

    function message(text, link, linkText) {
      panel.textContent = "";
      panel.appendChild(el("p", { "class": "note", text: text }));
      panel.appendChild(el("p", { "class": "foot" }, [el("a", { href: link, text: linkText })]));
    }

    // Portail unreachable or hanging must not leave the button "Loading…" forever: give up after
    // WAIT_MS and say the menu is unavailable, with a link to the portal (which may answer later).
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, WAIT_MS) : null;
    fetch(portal + "/widget/menu.json", {
      credentials: "include", headers: { "Accept": "application/json" }, signal: controller ? controller.signal : undefined
    })
      .then(function (response) {
        if (timer) clearTimeout(timer);
        return response.json().then(function (data) { return { status: response.status, data: data }; });
      })
      .then(function (result) {
        var data = result.data || {};
        if (data.labels) Object.keys(labels).forEach(function (k) { if (data.labels[k]) labels[k] = data.labels[k]; });
        toggle.setAttribute("aria-label", labels.button);
        if (result.status === 200) {
          render(data);
          host.setAttribute("data-state", "ready");
        } else if (result.status === 403 && data.error === "action_required") {
          message(labels.review, safeUrl(data.action_url) || portal + "/", labels.review_link);
          host.setAttribute("data-state", "action");
        } else if (result.status === 401) {
          message(labels.login, safeUrl(data.login_url) || portal + "/login", labels.login);
          host.setAttribute("data-state", "login");
        } else {
          throw new Error(String(result.status));
        }
      })
      .catch(function () {
        message(labels.error, portal + "/", labels.portal);
        host.setAttribute("data-state", "error");
      });
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
