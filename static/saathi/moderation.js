// Moderation in the browser. Two parts, one file:
// 1. On the room page (#room): the private `support` panel ("I'm OK" / "I'd like to talk to someone"), the
//    counsellor's invitation to a private room, a Report button on messages, and the chair's and moderators'
//    tools. It listens to room.js's `saathi:frame` events and sends on its socket.
// 2. On the dashboard (#moderation): live flags and reports over /ws/moderation/, sorted by level and deadline,
//    with sound and a browser notification when this person is paged.
// Everything people wrote is shown with textContent only: never parsed as HTML.
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function button(label, onClick, cls) {
    var b = el("button", cls || "", label); b.type = "button"; b.addEventListener("click", onClick); return b;
  }

  // --- 1. The room page -------------------------------------------------------------------------------
  var room = document.getElementById("room");
  if (room) {
    var STAFF_ROLES = {chair: 1, moderator: 1, counsellor: 1, admin: 1};
    var panel = document.getElementById("support-panel");
    var tools = document.getElementById("mod-tools");
    var list = document.getElementById("messages");
    var myRole = "";

    var send = function (frame) {
      var s = window.saathiRoom && window.saathiRoom.socket();
      if (s && s.readyState === WebSocket.OPEN) { s.send(JSON.stringify(frame)); return true; }
      return false;
    };

    var showSupport = function (frame) {
      if (!panel) return;
      panel.replaceChildren();
      panel.append(el("h2", "", "You're not alone"), el("p", "", frame.text));
      var lines = el("ul", "helplines");
      (frame.helplines || []).forEach(function (h) {
        var li = el("li");
        var call = el("a", "", h.number); call.href = "tel:" + String(h.number).replace(/[^0-9+]/g, "");
        li.append(el("strong", "", h.name), " ", call, el("span", "small", " " + (h.hours || "")));
        lines.append(li);
      });
      panel.append(lines);
      var answer = el("p", "actions");
      answer.append(
        button("I'm OK", function () { if (send({type: "support_reply", wants_to_talk: false})) answer.remove(); }),
        button("I'd like to talk to someone", function () {
          if (send({type: "support_reply", wants_to_talk: true})) answer.remove();
        }, "primary")
      );
      panel.append(answer);
      panel.hidden = false;
      panel.focus();
    };

    var showInvite = function (frame) {
      if (!panel) return;
      var p = el("p", "invite");
      var link = el("a", "button primary", "Open the private room"); link.href = frame.url;
      p.append(el("span", "", frame.text + " "), link);
      panel.append(p);
      panel.hidden = false;
    };

    var decorate = function (li) {
      if (!li || li.dataset.modDone || !li.dataset.id || li.classList.contains("notice")) return;
      li.dataset.modDone = "1";
      var id = Number(li.dataset.id);
      var bar = el("span", "message-tools");
      bar.append(button("Report", function () {
        var reason = window.prompt("What's wrong with this message? (optional)") ;
        if (reason === null) return;
        send({type: "report", message_id: id, reason: reason.slice(0, 500)});
      }, "link"));
      if (STAFF_ROLES[myRole]) {
        bar.append(" ", button("Hold", function () { send({type: "mod", action: "hold", target: String(id), reason: ""}); }, "link"));
        bar.append(" ", button("Release", function () { send({type: "mod", action: "release", target: String(id), reason: ""}); }, "link"));
        bar.append(" ", button("Delete", function () {
          if (window.confirm("Delete this message for everyone?")) send({type: "mod", action: "delete", target: String(id), reason: ""});
        }, "link"));
      }
      li.append(bar);
    };

    var buildTools = function () {
      if (!tools || !STAFF_ROLES[myRole] || tools.dataset.built) return;
      tools.dataset.built = "1";
      var form = el("form", "mod-form");
      var action = el("select"); action.setAttribute("aria-label", "Action");
      [["mute", "Mute (minutes)"], ["unmute", "Unmute"], ["remove", "Remove from this room"], ["ban", "Ban from the fellowship (moderators)"],
       ["slow", "Slow mode (seconds, empty = off)"], ["lock", "Lock the room"], ["unlock", "Unlock the room"]].forEach(function (o) {
        var opt = el("option", "", o[1]); opt.value = o[0]; action.append(opt);
      });
      var target = el("input"); target.placeholder = "Handle"; target.setAttribute("aria-label", "Handle");
      var amount = el("input"); amount.type = "number"; amount.min = "1"; amount.placeholder = "Minutes / seconds"; amount.setAttribute("aria-label", "Minutes or seconds");
      var reason = el("input"); reason.placeholder = "Reason (for the audit log)"; reason.setAttribute("aria-label", "Reason");
      form.append(el("strong", "", "Chair's tools "), action, target, amount, reason, el("button", "primary", "Apply"));
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var frame = {type: "mod", action: action.value, target: target.value.trim(), reason: reason.value.trim()};
        var n = parseInt(amount.value, 10);
        if (n > 0) frame[action.value === "slow" ? "seconds" : "minutes"] = n;
        send(frame);
      });
      tools.append(form);
      tools.hidden = false;
    };

    room.addEventListener("saathi:frame", function (event) {
      var frame = event.detail || {};
      if (frame.type === "welcome") { myRole = (frame.you && frame.you.role) || ""; buildTools(); }
      else if (frame.type === "support") showSupport(frame);
      else if (frame.type === "notice" && frame.code === "counsellor_room") showInvite(frame);
    });
    if (list) {
      new MutationObserver(function (records) {
        records.forEach(function (r) { r.addedNodes.forEach(function (n) { if (n.nodeType === 1) decorate(n); }); });
      }).observe(list, {childList: true});
    }
  }

  // --- 2. The dashboard ---------------------------------------------------------------------------------
  var root = document.getElementById("moderation");
  if (!root) return;
  var RANK = {imminent: 3, high: 2, concern: 1};
  var flags = new Map();
  var reports = new Map();
  var outcomes = JSON.parse((document.getElementById("mod-outcomes") || {}).textContent || "[]");
  var state = document.getElementById("mod-connection");
  var announcer = document.getElementById("mod-announcer");
  var flagList = document.getElementById("flags");
  var reportList = document.getElementById("reports");
  var canHandle = root.dataset.canHandle === "1";
  var flagUrl = root.dataset.flagUrl;  // ".../flags/0/"
  var csrf = (document.querySelector("#mod-csrf input[name=csrfmiddlewaretoken]") || {}).value || "";
  var socket = null, attempt = 0, alerts = false, audio = null;

  function beep() {
    if (!alerts) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.35].forEach(function (at) {
        var osc = audio.createOscillator(), gain = audio.createGain();
        osc.frequency.value = 880; gain.gain.value = 0.2;
        osc.connect(gain); gain.connect(audio.destination);
        osc.start(audio.currentTime + at); osc.stop(audio.currentTime + at + 0.2);
      });
    } catch (e) { /* no sound available */ }
  }

  function page(flag) {
    beep();
    var text = "Crisis flag (" + flag.level + "): " + flag.handle + " in " + flag.room_name;
    announcer.textContent = text;
    if (alerts && window.Notification && Notification.permission === "granted") {
      try { new Notification("Saathi: " + flag.level + " flag", {body: text, tag: "flag-" + flag.id, requireInteraction: true}); } catch (e) { /* ignore */ }
    }
  }

  function postForm(url, fields) {
    var form = el("form"); form.method = "post"; form.action = url; form.hidden = true;
    var token = el("input"); token.type = "hidden"; token.name = "csrfmiddlewaretoken"; token.value = csrf; form.append(token);
    Object.keys(fields || {}).forEach(function (k) { var i = el("input"); i.type = "hidden"; i.name = k; i.value = fields[k]; form.append(i); });
    document.body.append(form); form.submit();
  }

  function flagCard(f) {
    var li = el("li", "flag level-" + f.level + " state-" + f.state);
    var link = el("a", "", "#" + f.id); link.href = flagUrl.replace("/0/", "/" + f.id + "/");
    var head = el("p");
    head.append(link, " ", el("strong", "", f.level), " · ", el("span", "handle", f.handle), " in " + f.room_name + " · ",
      el("span", "", f.state + (f.owner ? " by " + f.owner : "")), " · now with " + f.step);
    var due = el("p", "small", "Raised " + new Date(f.raised_at).toLocaleTimeString() +
      (f.state === "open" ? " · escalates at " + new Date(f.deadline).toLocaleTimeString() : ""));
    li.append(head, due);
    if (f.wants_to_talk) li.append(el("p", "warn", "Asked to talk to someone."));
    if (f.member_said_ok) li.append(el("p", "small", "Said they are OK."));
    if (f.excerpt) li.append(el("blockquote", "excerpt", f.excerpt));
    if (canHandle) {
      var bar = el("p", "actions");
      if (f.state === "open") bar.append(button("Acknowledge", function () { sendDesk({type: "ack", flag_id: f.id}); }, "primary"));
      if (f.private_room) { var go = el("a", "button", "Go to the private room"); go.href = f.private_room; bar.append(go); }
      else bar.append(button("Open a private room", function () { postForm(flagUrl.replace("/0/", "/" + f.id + "/room/"), {}); }));
      var pick = el("select"); pick.setAttribute("aria-label", "Outcome");
      outcomes.forEach(function (o) { var opt = el("option", "", o[1]); opt.value = o[0]; pick.append(opt); });
      bar.append(pick, button("Resolve", function () {
        var note = window.prompt("A last hand-off note (optional)") || "";
        sendDesk({type: "resolve", flag_id: f.id, outcome: pick.value, note: note});
      }));
      li.append(bar);
    }
    return li;
  }

  function render() {
    var live = Array.from(flags.values()).filter(function (f) { return f.state !== "resolved"; });
    live.sort(function (a, b) {
      return (RANK[b.level] - RANK[a.level]) || ((a.state === "open" ? 0 : 1) - (b.state === "open" ? 0 : 1)) ||
        (Date.parse(a.deadline) - Date.parse(b.deadline));
    });
    if (flagList) {
      flagList.replaceChildren.apply(flagList, live.length ? live.map(flagCard) : [el("li", "empty", "No live flags.")]);
    }
    ["imminent", "high", "concern"].forEach(function (level) {
      var n = document.querySelector("[data-count=" + level + "]");
      if (n) n.textContent = String(live.filter(function (f) { return f.level === level; }).length);
    });
    var open = Array.from(reports.values()).filter(function (r) { return r.state === "open"; });
    if (reportList) {
      reportList.replaceChildren.apply(reportList, open.length ? open.map(function (r) {
        var li = el("li", "report");
        li.append(el("strong", "", r.handle), " in " + r.room_name + " (message " + r.message_id + "): ",
          el("span", "excerpt", r.excerpt), el("span", "small", " Reason: " + (r.reason || "none given")));
        return li;
      }) : [el("li", "empty", "No open reports.")]);
    }
    var count = document.querySelector("[data-count=reports]");
    if (count) count.textContent = String(open.length);
  }

  function sendDesk(frame) { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame)); }

  function onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        attempt = 0; state.textContent = "Live"; state.dataset.state = "open";
        flags.clear(); reports.clear();
        (frame.flags || []).forEach(function (f) { flags.set(f.id, f); });
        (frame.reports || []).forEach(function (r) { reports.set(r.id, r); });
        render(); break;
      case "flag":
        flags.set(frame.id, frame); render();
        if (frame.paged || frame.level === "imminent") page(frame);
        break;
      case "flag_update":
        flags.set(frame.id, frame); render();
        if (frame.paged && (frame.change === "escalated" || frame.change === "upgraded" || frame.change === "updated")) page(frame);
        break;
      case "report": reports.set(frame.id, frame); render(); announcer.textContent = "New report about " + frame.handle; break;
      case "error": announcer.textContent = frame.detail; state.textContent = frame.detail; break;
      default: break;
    }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.wsPath);
    socket.addEventListener("message", function (event) {
      var frame; try { frame = JSON.parse(event.data); } catch (e) { return; }
      onFrame(frame);
    });
    socket.addEventListener("close", function (event) {
      if (event.code === 4401 || event.code === 4403) { state.textContent = "This page is for staff."; return; }
      attempt += 1;
      var delay = Math.min(30000, 500 * Math.pow(2, Math.min(attempt, 6)));
      state.textContent = "Connection lost. Reconnecting…"; state.dataset.state = "closed";
      setTimeout(connect, delay);
    });
  }

  var alertsButton = document.getElementById("mod-alerts");
  if (alertsButton) alertsButton.addEventListener("click", function () {
    alerts = true; beep();  // a click is needed before a page may play sound
    if (window.Notification && Notification.permission === "default") Notification.requestPermission();
    alertsButton.textContent = "Sound and notifications are on";
    alertsButton.disabled = true;
  });
  setInterval(function () { sendDesk({type: "ping"}); }, 25000);
  setInterval(render, 30000);  // keeps "escalates at" honest as time passes
  connect();
})();
