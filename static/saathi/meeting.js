// The meeting on the room page: the waiting room, the speaking queue, the share timer, the chair's tools
// and milestones. room.js owns the socket; it hands every frame here as a "saathi:frame" event. Text from
// people is set with textContent only.
(function () {
  "use strict";
  var root = document.getElementById("room");
  var panel = document.getElementById("meeting-panel");
  if (!root || !panel) return;
  var $ = function (id) { return document.getElementById(id); };
  var runsFloor = panel.dataset.runsFloor === "yes";
  var me = null;
  var handUp = false;
  var timerEnds = null;
  var meeting = {state: panel.dataset.state, starts_at: panel.dataset.startsAt || null, sharing: true};

  function send(frame) {
    var socket = window.saathiRoom && window.saathiRoom.socket();
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function minutesUntil(iso) { return Math.max(0, Math.ceil((new Date(iso) - Date.now()) / 60000)); }

  function localTime(iso) {
    try { return new Date(iso).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", timeZoneName: "short"}); } catch (e) { return ""; }
  }

  function showState() {
    var text = "";
    var sharing = !!meeting.sharing;
    if (meeting.state === "doors_open" && meeting.starts_at) {
      var n = minutesUntil(meeting.starts_at);
      text = "Doors are open. The meeting starts in " + n + " minute" + (n === 1 ? "" : "s") + " (" + localTime(meeting.starts_at) + "); sharing opens when it starts.";
    } else if (meeting.state === "live") { text = sharing ? "The meeting is on. Sharing is open." : "The meeting is on. Sharing is closed for now.";
    } else if (meeting.state === "ending") { text = "The meeting is ending soon.";
    } else if (meeting.state === "closed") { text = "The meeting has ended. The room is read-only."; }
    $("meeting-state").textContent = text;
    panel.dataset.state = meeting.state;
    var sendButton = $("send-button");
    if (sendButton) sendButton.disabled = !(runsFloor || sharing);
    $("floor-rules").textContent = meeting.crosstalk ? "Cross-talk is on." : "Cross-talk is off: share about your own experience.";
  }

  // The schedule, not the worker, decides: if no frame arrives at the start, the page still moves on.
  setInterval(function () {
    if (meeting.state === "doors_open" && meeting.starts_at && new Date(meeting.starts_at) <= Date.now()) {
      meeting.state = "live"; meeting.sharing = true;
    }
    showState();
    showTimer();
  }, 1000);

  function showQueue(frame) {
    var list = $("queue"); list.replaceChildren();
    (frame.handles || []).forEach(function (h) { var li = document.createElement("li"); li.textContent = h; list.append(li); });
    $("speaking").textContent = frame.speaking ? "Speaking now: " + frame.speaking : "";
    handUp = !!me && (frame.handles || []).indexOf(me) !== -1;
    $("hand-button").textContent = handUp ? "Lower hand" : "Raise hand";
    $("hand-button").setAttribute("aria-pressed", handUp ? "true" : "false");
  }

  function showTimer() {
    var el = $("share-timer");
    if (!timerEnds) { el.hidden = true; return; }
    var left = Math.max(0, Math.round((timerEnds - Date.now()) / 1000));
    el.hidden = false;
    el.textContent = left > 0 ? "Share time left: " + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") : "Time. Please finish your share.";
  }

  function addLine(className, text) {
    var list = $("messages"); if (!list) return;
    var li = document.createElement("li"); li.className = className; li.dataset.id = String((window.saathiRoom ? window.saathiRoom.lastId() : 0) + 0.5);
    li.textContent = text; list.append(li);
    var announcer = $("announcer"); if (announcer) announcer.textContent = text;
  }

  function applyMeeting(m) {
    meeting = m;
    timerEnds = m.timer_ends_at ? new Date(m.timer_ends_at) : null;
    showState(); showTimer();
    if (m.speaking !== undefined) $("speaking").textContent = m.speaking ? "Speaking now: " + m.speaking : "";
  }

  root.addEventListener("saathi:frame", function (event) {
    var frame = event.detail;
    switch (frame.type) {
      case "welcome":
        me = frame.you.handle;
        if (frame.meeting) applyMeeting(frame.meeting);
        showQueue({handles: frame.queue || [], speaking: frame.meeting && frame.meeting.speaking});
        break;
      case "meeting": applyMeeting(frame); break;
      case "queue": showQueue(frame); break;
      case "readings": addLine("readings", frame.text); break;
      case "milestone": addLine("milestone", "🎉 " + frame.text); break;
      case "notice": if (frame.code === "your_turn") $("speaking").textContent = "It's your turn to share."; break;
      default: break;
    }
  });

  $("hand-button").addEventListener("click", function () { send({type: "hand", up: !handUp}); });
  var milestone = $("milestone-button");
  if (milestone) milestone.addEventListener("click", function () { send({type: "milestone"}); milestone.disabled = true; });
  if (runsFloor) {
    $("call-next").addEventListener("click", function () { send({type: "mod", action: "next"}); });
    document.querySelectorAll("[data-chair]").forEach(function (button) {
      button.addEventListener("click", function () { send({type: "chair", action: button.dataset.chair}); });
    });
    $("timer-set").addEventListener("click", function () {
      var minutes = Math.max(0, Math.min(30, Number($("timer-minutes").value) || 0));
      send({type: "chair", action: "timer", seconds: Math.round(minutes * 60)});
    });
  }
  showState();
})();
