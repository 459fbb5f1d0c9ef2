"use strict";
// The approval console's page. Everything an agent wrote arrives already
// escaped by the console (bus_print text mode) and is only ever set as
// textContent, never as HTML. The token comes from this page's URL; the
// event stream carries it in its URL (EventSource cannot send headers),
// every state change in the X-Bulkhead-Token header.
(function () {
  var token = new URLSearchParams(location.search).get("token") || "";
  var cards = {};          // approval id -> its card element
  var state = null;        // the last snapshot from the console
  var skew = 0;            // console clock minus ours, in microseconds

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function row(dl, label, value) {
    if (value === undefined || value === null || value === "") { return; }
    dl.appendChild(el("dt", null, label));
    dl.appendChild(el("dd", null, value));
  }

  function when(us) {
    return new Date(us / 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function left(expires_us) {
    var s = Math.floor((expires_us - (Date.now() * 1000 + skew)) / 1e6);
    if (s <= 0) { return "expiring"; }
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s left";
  }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Bulkhead-Token": token },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "omit"
    }).then(function (r) {
      return r.json().catch(function () { return { code: "HTTP" + r.status, reason: r.statusText }; });
    });
  }

  function show(card, reply) {
    var res = card.querySelector(".result");
    res.textContent = reply.code + ": " + reply.reason;
    res.className = "result " + (reply.code === "OK" ? "good" : "bad");
  }

  function causesList(h) {
    var box = el("div", "causes-box");
    box.appendChild(el("h3", "small", "What led to it (" + h.causes.length + " message" +
                       (h.causes.length === 1 ? "" : "s") + (h.causes_cut ? ", more further back" : "") + ")"));
    if (!h.causes.length) {
      box.appendChild(el("p", "quiet", "No causes named: the sender says nothing led to it."));
      return box;
    }
    var ol = el("ol", "causes");
    h.causes.forEach(function (c) {
      var li = el("li");
      li.setAttribute("data-seq", c.seq);
      if (c.restricted) { li.appendChild(el("span", "mark", "RESTRICTED")); }
      li.appendChild(document.createTextNode(
        "seq " + c.seq + " \u00b7 " + c.sender + " -> " + c.recipient + " \u00b7 " + c["class"] +
        (c.action ? " \u00b7 " + c.action : "") + " \u00b7 " + when(c.time_us) +
        " \u00b7 " + (c.depth > 1 ? c.depth + " steps back" : "direct cause")));
      if (c.justification) { li.appendChild(el("div", "small", "\u201c" + c.justification + "\u201d")); }
      if (c.restricted && c.restricted_why) { li.appendChild(el("div", "small", c.restricted_why)); }
      ol.appendChild(li);
    });
    box.appendChild(ol);
    return box;
  }

  // Built once per hold: what it is does not change; update() keeps the
  // parts that do (votes, time, blocked) current.
  function build(h) {
    var card = el("article", "hold" + (h.restricted ? " restricted" : ""));
    card.setAttribute("data-id", h.id);
    var route = el("div", "route");
    route.appendChild(el("span", h.restricted ? "mark" : "mark ok", h.restricted ? "RESTRICTED" : "trusted"));
    route.appendChild(document.createTextNode(h.sender + " -> " + h.recipient + " \u00b7 " + h["class"] +
                                              (h.action ? " \u00b7 " + h.action : "")));
    card.appendChild(route);
    card.appendChild(el("div", "why", h.justification || "(no justification given)"));
    if (h.restricted) {
      card.appendChild(el("p", "blocked", "Restricted: it comes from or depends on untrusted content. " +
                                          (h.restricted_why || "")));
    }
    var dl = el("dl");
    row(dl, "resource", h.resource);
    dl.appendChild(el("dt", null, "votes"));
    dl.appendChild(el("dd", "votes"));
    dl.appendChild(el("dt", null, "time left"));
    dl.appendChild(el("dd", "left"));
    row(dl, "hold", h.id + " (seq " + h.seq + ")");
    row(dl, "intent", h.intent);
    row(dl, "tool", h.tool);
    row(dl, "content type", h.content_type);
    row(dl, "message id", h.message_id);
    row(dl, "sender key", h.key_fp);
    row(dl, "digest", h.digest);
    card.appendChild(dl);

    if (!h.verified) {
      card.appendChild(el("p", "mismatch", "Not shown: " + (h.mismatch || "its record could not be checked") +
                                           ". Nothing of it can be approved here" +
                                           (h.tampered ? "; tell the bus's operator (bulkhead verify checks the log)." : ".")));
    } else {
      var p = h.payload;
      card.appendChild(el("h3", "small", p ? "Payload as it will be delivered: " + p.size + " bytes" +
                                             (p.more ? ", the first " + p.shown_bytes + " shown" : "") : "No payload"));
      if (p) {
        var pre = el("pre", "payload", p.text);
        card.appendChild(pre);
        if (p.more) {
          var all = el("button", "link show-all", "show all " + p.size + " bytes");
          all.addEventListener("click", function () {
            fetch("/api/hold?id=" + encodeURIComponent(h.id) + "&token=" + encodeURIComponent(token),
                  { cache: "no-store", credentials: "omit" })
              .then(function (r) { return r.json(); })
              .then(function (j) {
                if (j.code === "OK") { pre.textContent = j.payload; all.remove(); } else { show(card, j); }
              });
          });
          card.appendChild(all);
        }
      }
      card.appendChild(causesList(h));
    }
    var unlocks = el("div", "unlocks small");
    unlocks.textContent = h.unlocks ? "Approving lets " + h.recipient + " reach: " + h.unlocks.join(", ")
                                    : "What approving unlocks: not known to this console (no blast-radius analysis).";
    card.appendChild(unlocks);

    card.appendChild(el("p", "blocked why-not"));
    var actions = el("div", "actions");
    var approve = el("button", "approve", "Approve");
    var reason = el("input", "reason");
    reason.type = "text";
    reason.placeholder = "reason to deny (the sender sees it)";
    reason.maxLength = 500;
    var deny = el("button", "deny", "Deny");
    approve.addEventListener("click", function () {
      approve.disabled = true;
      post("/api/approve", { id: h.id, digest: h.digest }).then(function (r) { show(card, r); approve.disabled = false; });
    });
    deny.addEventListener("click", function () {
      if (!reason.value.trim()) { show(card, { code: "REASON", reason: "say why: the sender reads it" }); return; }
      deny.disabled = true;
      post("/api/deny", { id: h.id, reason: reason.value }).then(function (r) { show(card, r); deny.disabled = false; });
    });
    if (h.verified) { actions.appendChild(approve); }
    actions.appendChild(reason);
    actions.appendChild(deny);
    card.appendChild(actions);
    card.appendChild(el("p", "result"));
    return card;
  }

  function update(card, h) {
    card.querySelector(".votes").textContent = h.votes.length + " of " + h.quorum +
      (h.votes.length ? " (" + h.votes.join(", ") + ")" : "");
    card.querySelector(".left").textContent = left(h.expires_us);
    var why = card.querySelector(".why-not");
    why.textContent = h.blocked ? "You may not decide on this: " + h.blocked + "." : "";
    why.hidden = !h.blocked;
    // One it may not decide on shows why, not buttons that would fail.
    card.querySelector(".actions").hidden = !!h.blocked;
  }

  function render(s) {
    state = s;
    skew = s.now_us - Date.now() * 1000;
    $("who").textContent = "Signed in to the bus as " + s.agent + ".";
    $("link").textContent = s.bus_ok ? "Live." : "The bus is not answering: " + s.bus_error;
    $("link").className = "status" + (s.bus_ok ? "" : " down");
    var seen = {};
    // What this approver can act on first, soonest to expire first; those
    // it may not decide on last.
    var holds = s.holds.slice().sort(function (a, b) {
      return (a.blocked ? 1 : 0) - (b.blocked ? 1 : 0) || a.expires_us - b.expires_us;
    });
    holds.forEach(function (h) {
      seen[h.id] = true;
      if (!cards[h.id]) {
        cards[h.id] = build(h);
        $("holds").appendChild(cards[h.id]);
      }
      update(cards[h.id], h);
    });
    var order = holds.map(function (h) { return h.id; }).join(" ");
    var shown = Array.prototype.map.call($("holds").children,
                                         function (c) { return c.getAttribute("data-id"); });
    if (shown.filter(function (id) { return seen[id]; }).join(" ") !== order) {
      holds.forEach(function (h) { $("holds").appendChild(cards[h.id]); });
    }
    Object.keys(cards).forEach(function (id) {
      if (!seen[id]) { cards[id].remove(); delete cards[id]; }
    });
    $("count").textContent = s.holds.length ? "(" + s.holds.length + ")" : "";
    $("empty").hidden = s.holds.length > 0;
    var hist = $("history");
    hist.textContent = "";
    s.history.forEach(function (d) {
      var li = el("li");
      li.setAttribute("data-id", d.id);
      li.setAttribute("data-state", d.state);
      li.appendChild(el("span", d.state === "released" ? "mark ok" : "mark", d.state));
      li.appendChild(document.createTextNode(d.sender + " -> " + d.recipient + " \u00b7 " + d["class"] +
        (d.action ? " \u00b7 " + d.action : "") + " \u00b7 " + when(d.time_us) +
        (d.actor ? " \u00b7 by " + d.actor : "")));
      if (d.reason) { li.appendChild(el("div", "small", d.reason)); }
      hist.appendChild(li);
    });
  }

  setInterval(function () {
    if (!state) { return; }
    state.holds.forEach(function (h) {
      if (cards[h.id]) { cards[h.id].querySelector(".left").textContent = left(h.expires_us); }
    });
  }, 1000);

  var events = new EventSource("/events?token=" + encodeURIComponent(token));
  events.addEventListener("state", function (e) { render(JSON.parse(e.data)); });
  events.onerror = function () {
    $("link").textContent = "The console is not answering; retrying\u2026";
    $("link").className = "status down";
  };
})();
