// Live inbox: listens to /notifications/stream (Server-Sent Events) and prepends new notifications.
(function () {
  "use strict";
  var list = document.getElementById("notification-list");
  if (!list || !window.EventSource) { return; }
  var source = new EventSource(list.getAttribute("data-stream"));
  source.addEventListener("notification", function (event) {
    var data = JSON.parse(event.data);
    var counter = document.getElementById("unread-count");
    if (counter) { counter.textContent = String(data.unread); }
    document.querySelectorAll("[data-unread]").forEach(function (badge) {
      badge.textContent = String(data.unread);
      badge.hidden = !data.unread;
    });
    if (document.getElementById("n" + data.id)) { return; }
    var item = document.createElement("li");
    item.className = "card notification unread";
    item.id = "n" + data.id;
    var meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = data.tool + " · " + data.type;
    var title = document.createElement("h2");
    title.className = "title";
    if (data.link) {
      var link = document.createElement("a");
      link.href = data.link;
      link.rel = "noopener noreferrer";
      link.textContent = data.title;
      title.appendChild(link);
    } else {
      title.textContent = data.title;
    }
    item.appendChild(meta);
    item.appendChild(title);
    if (data.body) {
      var body = document.createElement("p");
      body.textContent = data.body;
      item.appendChild(body);
    }
    var empty = list.querySelector(".empty");
    if (empty) { empty.remove(); }
    list.insertBefore(item, list.firstChild);
  });
})();
