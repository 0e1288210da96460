// The room page: one WebSocket, reconnects with backoff, resumes after the last id it saw, and keeps
// unsent messages (with their client_id) until the server has stored them. Text is rendered with
// textContent only: nothing a member writes is ever parsed as HTML here.
(function () {
  "use strict";
  var root = document.getElementById("room");
  if (!root) return;
  var els = {
    list: document.getElementById("messages"),
    state: document.getElementById("connection-state"),
    announcer: document.getElementById("announcer"),
    presence: document.getElementById("presence"),
    presenceCount: document.getElementById("presence-count"),
    form: document.getElementById("composer"),
    input: document.getElementById("composer-input"),
    error: document.getElementById("composer-error"),
    unsent: document.getElementById("unsent"),
  };
  var socket = null;
  var lastId = 0;            // the highest message id shown
  var joined = false;        // welcomed once: every reconnect resumes with ?after=, even after=0
  var seen = new Set();      // ids shown, so a resumed or retried message never shows twice
  var pending = new Map();   // client_id -> {body, element}
  var attempt = 0;
  var retryTimer = null;  // the pending reconnect, if any
  var closedForGood = false;
  var FINAL_CODES = {4401: "Please sign in or join as a guest.", 4403: "You can't join this meeting.", 4404: "This meeting doesn't exist."};

  function setState(text, kind) { els.state.textContent = text; els.state.dataset.state = kind || ""; }

  function uuid4() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.from(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function timeLabel(iso) {
    try { return new Date(iso).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}); } catch (e) { return ""; }
  }

  function showMessage(m, announce) {
    if (typeof m.id !== "number") return;
    if (m.client_id && pending.has(m.client_id)) {
      var p = pending.get(m.client_id); pending.delete(m.client_id);
      if (p.element) p.element.remove();
    }
    if (seen.has(m.id)) {  // a message we show already: a moderator held or released it
      var shown = document.getElementById("m-" + m.id);
      if (shown && !m.held && shown.classList.contains("held")) {
        shown.classList.remove("held");
        var heldNote = shown.querySelector(".held-note"); if (heldNote) heldNote.remove();
      } else if (shown && m.held && !shown.classList.contains("held")) {
        shown.classList.add("held");
        shown.append(Object.assign(document.createElement("p"), {className: "small held-note", textContent: "Held for a moderator to review. Only you can see it."}));
      }
      return;
    }
    seen.add(m.id);
    if (m.id > lastId) lastId = m.id;
    var li = document.createElement("li");
    li.className = "message";
    li.id = "m-" + m.id;
    li.dataset.id = String(m.id);
    var who = document.createElement("span"); who.className = "handle"; who.textContent = m.handle;
    var when = document.createElement("time"); when.dateTime = m.sent_at || ""; when.textContent = timeLabel(m.sent_at);
    var body = document.createElement("p"); body.className = "body"; body.textContent = m.body;
    li.append(who, " ", when, body);
    if (m.held) { li.classList.add("held"); var note = document.createElement("p"); note.className = "small held-note"; note.textContent = "Held for a moderator to review. Only you can see it."; li.append(note); }
    // Keep the list in id order even if a back-filled message arrives late.
    var next = null;
    for (var node = els.list.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.dataset.id) < m.id) break;
      next = node;
    }
    els.list.insertBefore(li, next);
    if (announce) els.announcer.textContent = m.handle + " says: " + m.body;
    els.list.parentElement.scrollTop = els.list.parentElement.scrollHeight;
  }

  function showPresence(frame) {
    els.presenceCount.textContent = String(frame.count);
    els.presence.replaceChildren();
    (frame.handles || []).forEach(function (h) { var li = document.createElement("li"); li.textContent = h; els.presence.append(li); });
  }

  function showNotice(text) {
    var li = document.createElement("li"); li.className = "notice"; li.dataset.id = String(lastId + 0.5);
    li.textContent = text; els.list.append(li); els.announcer.textContent = text;
  }

  function markUnsent(clientId, reason) {
    var p = pending.get(clientId); if (!p) return;
    p.element.querySelector(".why").textContent = reason;
    p.element.classList.add("failed");
  }

  function queue(body) {
    var clientId = uuid4();
    var li = document.createElement("li"); li.className = "unsent-item";
    var text = document.createElement("span"); text.textContent = body;
    var why = document.createElement("span"); why.className = "why"; why.textContent = "Sending…";
    var retry = document.createElement("button"); retry.type = "button"; retry.textContent = "Retry";
    retry.addEventListener("click", function () { transmit(clientId); });
    li.append(text, " ", why, " ", retry);
    els.unsent.append(li);
    pending.set(clientId, {body: body, element: li});
    transmit(clientId);
  }

  function transmit(clientId) {
    var p = pending.get(clientId); if (!p) return;
    if (socket && socket.readyState === WebSocket.OPEN) {
      p.element.querySelector(".why").textContent = "Sending…";
      socket.send(JSON.stringify({type: "send", body: p.body, client_id: clientId}));
    } else {
      markUnsent(clientId, "Not sent yet: waiting for the connection.");
    }
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        attempt = 0;
        setState("Connected as " + frame.you.handle, "open");
        (frame.history || []).forEach(function (m) { showMessage(m, false); });
        if (!lastId && frame.last_id) lastId = frame.last_id;
        joined = true;
        pending.forEach(function (_, id) { transmit(id); });  // retry anything unsent, same client_id
        break;
      case "message": showMessage(frame, true); break;
      case "deleted":
        var gone = document.getElementById("m-" + frame.id);
        if (gone && frame.held) { gone.remove(); seen.delete(frame.id); }  // held for review: it may come back, in place
        else if (gone && frame.erased) {  // the author deleted their account: their words and handle go
          gone.querySelector(".body").textContent = "[removed]"; gone.querySelector(".handle").textContent = "[removed]";
          gone.classList.add("deleted");
        }
        else if (gone) { gone.querySelector(".body").textContent = "[removed by a moderator]"; gone.classList.add("deleted"); }
        break;
      case "presence": showPresence(frame); break;
      case "resumed": if (frame.last_id > lastId) lastId = frame.last_id; break;
      case "notice":
        if (frame.code === "resync" && socket) socket.send(JSON.stringify({type: "resume", after: lastId}));
        else showNotice(frame.text);
        break;
      case "error":
        if (frame.client_id) {
          var retryable = frame.code === "unavailable";
          markUnsent(frame.client_id, frame.detail + (retryable ? " Retrying…" : ""));
          if (retryable) setTimeout(function () { transmit(frame.client_id); }, 2000);
        } else { els.error.textContent = frame.detail; }
        break;
      case "pong": break;
      default: break;
    }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + location.host + root.dataset.wsPath + (joined ? "?after=" + lastId : "");
    setState(attempt ? "Reconnecting…" : "Connecting…", "connecting");
    socket = new WebSocket(url);
    socket.addEventListener("message", function (event) {
      var frame; try { frame = JSON.parse(event.data); } catch (e) { return; }
      onFrame(frame);
      root.dispatchEvent(new CustomEvent("saathi:frame", {detail: frame}));  // meeting.js and other panels listen
    });
    socket.addEventListener("close", function (event) {
      if (FINAL_CODES[event.code]) { closedForGood = true; setState(FINAL_CODES[event.code], "closed"); return; }
      if (closedForGood) return;
      pending.forEach(function (_, id) { markUnsent(id, "Not sent yet: reconnecting."); });
      attempt += 1;
      // Doubling from 0.5 s to 8 s with jitter: never more than 12 s between tries, so someone who
      // needs the room is back within seconds of the network, without every browser retrying at once.
      var delay = Math.min(8000, 500 * Math.pow(2, Math.min(attempt, 4))) * (0.5 + Math.random());
      setState("Connection lost. Reconnecting in " + Math.round(delay / 1000) + " s…", "closed");
      retryTimer = setTimeout(function () { retryTimer = null; connect(); }, delay);
    });
  }

  // Back online (a phone out of a tunnel, wifi again): try now instead of waiting out the delay.
  window.addEventListener("online", function () {
    if (retryTimer === null || closedForGood) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    connect();
  });

  els.form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = els.input.value.trim();
    els.error.textContent = "";
    if (!body) return;
    if (body.length > 2000) { els.error.textContent = "Messages are at most 2,000 characters."; return; }
    els.input.value = "";
    queue(body);
  });
  els.input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); els.form.requestSubmit(); }
  });
  setInterval(function () { if (socket && socket.readyState === WebSocket.OPEN) socket.send('{"type":"ping"}'); }, 25000);
  connect();
  window.saathiRoom = {lastId: function () { return lastId; }, socket: function () { return socket; }};
})();
