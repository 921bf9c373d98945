// The SecureChat web app: an IRC client over a secure WebSocket to the server that served it.
// The password lives only in memory while the tab is open (to log in again after a drop); only the
// account name is remembered (localStorage).
import { parse, serialize, nickOf, saslPlain, splitText, stripFormatting, fold, isRoom, utf8Length } from "./irc.js";
import { el, renderConversation, renderMembers, nickClass } from "./view.js";

const $ = (id) => document.getElementById(id);
const wanted = ["sasl", "server-time", "message-tags", "echo-message", "batch", "draft/chathistory", "draft/read-marker",
  "away-notify", "multi-prefix", "standard-replies", "account-tag", "setname"];
const historyPage = 50;

const state = {
  account: localStorage.getItem("securechat.account") || "",
  password: null,      // in memory only, for logging in again after a drop
  nick: null,
  socket: null,
  registered: false,
  caps: new Set(),
  conversations: new Map(),  // fold(name) → conversation
  current: null,
  batches: new Map(),
  retries: 0,
  reconnectTimer: null,
  signingOut: false,
  inputHistory: [],
  historyIndex: -1,
  maxLine: 512,
  listing: null,
};

function conversation(name, create = true) {
  const key = fold(name);
  let c = state.conversations.get(key);
  if (!c && create) {
    c = { name, key, room: isRoom(name), items: [], msgids: new Set(), members: new Map(), topic: "", unread: 0, mentions: 0,
      readMarker: null, joined: false, loadingOlder: false, noOlder: false, operator: false, topicLocked: true };
    state.conversations.set(key, c);
    renderSidebar();
  }
  return c;
}

// MARK: connection

function setState(text, bad = false) {
  const node = $("connection-state");
  node.textContent = text;
  node.classList.toggle("bad", bad);
}

function send(command, params = [], tags = null) {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) return false;
  state.socket.send(serialize(command, params, tags));
  return true;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  $("reconnect").hidden = true;
  state.lastError = null;
  state.registered = false;
  state.caps = new Set();
  setState("Connecting…");
  const socket = new WebSocket(`wss://${location.host}/`, ["text.ircv3.net"]);
  state.socket = socket;
  socket.onopen = () => {
    setState("Signing in…");
    send("CAP", ["LS", "302"]);
    send("NICK", [state.account]);
    send("USER", [state.account, "0", "*", "SecureChat web"]);
  };
  socket.onmessage = (event) => {
    for (const line of String(event.data).split(/\r?\n/)) {
      if (!line) continue;
      const message = parse(line);
      if (message) handle(message);
    }
  };
  socket.onclose = (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    for (const c of state.conversations.values()) c.joined = false;
    if (state.signingOut || !state.password) return;
    if (!state.registered && state.loginFailed) return;
    if ((state.lastError || "").includes("another connection")) {
      // Signed in again somewhere else (another tab, chat-client): coming back by ourselves would
      // throw that one out in turn, and the two would take turns forever. Ask first.
      setState("Signed in from another tab or device.", true);
      $("reconnect").hidden = false;
      return;
    }
    const delay = Math.min(30, 2 ** Math.min(state.retries, 5)) * (0.75 + Math.random() / 2);
    state.retries += 1;
    setState(`Disconnected${event.reason ? ` (${event.reason})` : ""}. Trying again in ${Math.round(delay)} s…`, true);
    state.reconnectTimer = setTimeout(connect, delay * 1000);
  };
}

function signIn(event) {
  event.preventDefault();
  const account = $("account").value.trim();
  const password = $("password").value;
  if (!account || !password) {
    $("signin-error").textContent = "Enter your account name and password.";
    return;
  }
  state.account = account;
  state.password = password;
  state.loginFailed = false;
  state.signingOut = false;
  $("password").value = "";
  $("signin-error").textContent = "";
  $("signin-button").disabled = true;
  $("signin-button").textContent = "Signing in…";
  performance.mark("securechat-signin");  // for the browser benchmark: sign-in to first room
  connect();
}

function loginFailed(text) {
  state.loginFailed = true;
  state.password = null;
  showSignIn(text);
  if (state.socket) state.socket.close();
}

function showSignIn(error = "") {
  $("chat").hidden = true;
  $("signin").hidden = false;
  $("signin-button").disabled = false;
  $("signin-button").textContent = "Sign in";
  $("signin-error").textContent = error;
  $("account").value = state.account;
  (state.account ? $("password") : $("account")).focus();
}

const failWords = {
  INVALID_CREDENTIALS: "Wrong account name or password.",
  ACCOUNT_LOCKED: "This account is locked. Ask the server's operator to unlock it.",
  RATE_LIMITED: "Too many sign-in attempts. Wait a minute, then try again.",
  SERVER_BUSY: "The server is busy. Try again in a moment.",
  BANNED: "You are banned from this server.",
};

// MARK: messages from the server

function time(message) {
  const t = message.tags.time ? new Date(message.tags.time) : new Date();
  return Number.isNaN(t.getTime()) ? new Date() : t;
}

function handle(message) {
  const batch = message.tags.batch && state.batches.get(message.tags.batch);
  if (batch && message.command !== "BATCH") {
    batch.messages.push(message);
    return;
  }
  const p = message.params;
  const from = nickOf(message.source);
  switch (message.command) {
    case "PING": send("PONG", p.slice(-1)); break;
    case "CAP": handleCap(p); break;
    case "AUTHENTICATE":
      if (p[0] === "+" && state.password !== null) for (const chunk of saslPlain(state.account, state.password)) send("AUTHENTICATE", [chunk]);
      break;
    case "903": send("CAP", ["END"]); break;
    case "FAIL":
      if (p[0] === "AUTHENTICATE" || p[0] === "PASS") { state.failText = failWords[p[1]] || p[p.length - 1]; break; }
      notice(state.current, `${p[0]}: ${p[p.length - 1]}`, true);
      break;
    case "904": case "902": case "464": case "465":
      loginFailed(state.failText || p[p.length - 1]);
      state.failText = null;
      break;
    case "001": welcome(p[0]); break;
    case "005":
      for (const token of p.slice(1, -1)) if (token.startsWith("LINELEN=")) state.maxLine = Number(token.slice(8)) || 512;
      break;
    case "JOIN": joined(from, p[0], message); break;
    case "PART": left(from, p[0], `${from} left${p[1] ? ` (${p[1]})` : ""}`, message); break;
    case "KICK": left(p[1], p[0], `${p[1]} was removed by ${from}${p[2] ? ` (${p[2]})` : ""}`, message); break;
    case "QUIT": quit(from, p[0], message); break;
    case "NICK": break;
    case "PRIVMSG": case "NOTICE": privmsg(message, from, false); break;
    case "TOPIC": {
      const c = conversation(p[0]);
      c.topic = p[1] || "";
      addEvent(c, `${from} set the topic: ${c.topic || "(none)"}`, message);
      if (c === state.current) renderTopic();
      break;
    }
    case "332": conversation(p[1]).topic = p[2] || ""; if (fold(p[1]) === state.current?.key) renderTopic(); break;
    case "324": { const c = conversation(p[1]); c.topicLocked = (p[2] || "").includes("t"); if (c === state.current) renderTopic(); break; }
    case "353": names(p[2], p[3] || ""); break;
    case "352": {
      // WHO: channel user host server nick flags; "G" (gone) is away.
      const member = conversation(p[1], false)?.members.get(fold(p[5] || ""));
      if (member) member.away = (p[6] || "").startsWith("G") ? member.away || "away" : null;
      break;
    }
    case "315": if (fold(p[1] || "") === state.current?.key) renderMembers($("member-list"), state.current.members); break;
    case "MODE": mode(from, p, message); break;
    case "AWAY": away(from, p[0]); break;
    case "BATCH": batchBoundary(message); break;
    case "MARKREAD": {
      const c = conversation(p[0], false);
      const marker = (p[1] || "").startsWith("timestamp=") ? new Date(p[1].slice(10)) : null;
      if (c && marker && !Number.isNaN(marker.getTime())) {
        c.readMarker = c.readMarker && c.readMarker > marker ? c.readMarker : marker;
        // Where the line goes: moved only while the conversation is not in front (or not placed yet).
        if (c !== state.current || c.lineMarker === undefined) { c.lineMarker = c.readMarker; if (c === state.current) renderMessages(); }
      }
      break;
    }
    case "322": state.listing?.push({ name: p[1], users: Number(p[2]) || 0, topic: p[3] || "" }); break;
    case "323": renderRoomList(); break;
    case "ERROR": state.lastError = p[0] || ""; setState(p[0] || "Disconnected", true); break;
    case "433": case "432": break;
    default:
      // Errors and replies worth reading go to the conversation in front.
      // (422: the server has no message of the day, which is nothing to report.)
      if (/^[45]\d\d$/.test(message.command) && !["421", "422"].includes(message.command)) notice(state.current, p.slice(1).join(" "), true);
      else if (message.command === "421") notice(state.current, `${p[1]}: unknown command`, true);
  }
}

function handleCap(p) {
  const sub = p[1];
  if (sub === "LS") {
    const more = p[2] === "*";
    const offered = (more ? p[3] : p[2]).split(" ").map((c) => c.split("=")[0]);
    state.offered = (state.offered || []).concat(offered);
    if (more) return;
    const request = wanted.filter((c) => state.offered.includes(c));
    state.offered = [];
    if (!request.includes("sasl")) { loginFailed("This server does not offer SASL sign-in."); return; }
    send("CAP", ["REQ", request.join(" ")]);
  } else if (sub === "ACK") {
    for (const c of p[2].split(" ")) if (c) state.caps.add(c.replace(/^-/, ""));
    if (state.caps.has("sasl")) send("AUTHENTICATE", ["PLAIN"]);
  } else if (sub === "NAK") {
    loginFailed("The server refused the sign-in capabilities.");
  }
}

function welcome(nick) {
  state.nick = nick;
  state.registered = true;
  state.retries = 0;
  localStorage.setItem("securechat.account", state.account);
  $("signin").hidden = true;
  $("chat").hidden = false;
  setState(`Connected as ${nick}`);
  updateNotificationButton();
  // After a reconnect: what was said while the socket was down, after the last message seen.
  for (const c of state.conversations.values()) {
    if (!c.room) catchUp(c);
  }
  if (state.caps.has("draft/chathistory")) send("CHATHISTORY", ["TARGETS", "timestamp=" + new Date(Date.now() - 30 * 86400e3).toISOString(), "timestamp=" + new Date(Date.now() + 60e3).toISOString(), "50"]);
  if (!state.current) $("join-name").focus();
}

function catchUp(c) {
  if (!state.caps.has("draft/chathistory")) return;
  const last = [...c.items].reverse().find((i) => i.msgid);
  if (last) send("CHATHISTORY", ["AFTER", c.name, "msgid=" + last.msgid, "100"]);
  else send("CHATHISTORY", ["LATEST", c.name, "*", String(historyPage)]);
}

function joined(nick, room, message) {
  const c = conversation(room);
  if (fold(nick) === fold(state.nick || "")) {
    const wasKnown = c.items.length > 0;
    c.joined = true;
    c.members = new Map();
    send("MODE", [room]);
    send("WHO", [room]);  // who is away now (away-notify tells changes from here on)
    if (wasKnown) catchUp(c);
    else if (state.caps.has("draft/chathistory")) send("CHATHISTORY", ["LATEST", room, "*", String(historyPage)]);
    if (!state.current || state.pendingSwitch === c.key) { state.pendingSwitch = null; show(c); }
    renderSidebar();
    return;
  }
  c.members.set(fold(nick), { nick, prefix: "", away: null });
  addEvent(c, `${nick} joined`, message);
  if (c === state.current) renderMembers($("member-list"), c.members);
}

function left(nick, room, text, message) {
  const c = conversation(room, false);
  if (!c) return;
  c.members.delete(fold(nick));
  if (fold(nick) === fold(state.nick || "")) {
    c.joined = false;
    if (message.command === "PART") {
      state.conversations.delete(c.key);
      if (state.current === c) { state.current = null; show([...state.conversations.values()][0] || null); }
      renderSidebar();
      return;
    }
  }
  addEvent(c, text, message);
  if (c === state.current) renderMembers($("member-list"), c.members);
}

function quit(nick, reason, message) {
  for (const c of state.conversations.values()) {
    if (c.members.delete(fold(nick))) {
      addEvent(c, `${nick} quit${reason ? ` (${reason})` : ""}`, message);
      if (c === state.current) renderMembers($("member-list"), c.members);
    }
  }
}

function names(room, list) {
  const c = conversation(room);
  for (const entry of list.split(" ")) {
    if (!entry) continue;
    const prefix = entry.match(/^[@+]*/)[0];
    const nick = entry.slice(prefix.length).split("!")[0];
    c.members.set(fold(nick), { nick, prefix, away: c.members.get(fold(nick))?.away || null });
    if (fold(nick) === fold(state.nick || "")) c.operator = prefix.includes("@");
  }
  if (c === state.current) { renderMembers($("member-list"), c.members); renderTopic(); }
}

function mode(from, p, message) {
  if (!isRoom(p[0])) return;
  const c = conversation(p[0], false);
  if (!c) return;
  let adding = true;
  let arg = 2;
  for (const ch of p[1] || "") {
    if (ch === "+" || ch === "-") { adding = ch === "+"; continue; }
    if ("ov".includes(ch)) {
      const target = p[arg++];
      const member = target && c.members.get(fold(target));
      const sign = ch === "o" ? "@" : "+";
      if (member) member.prefix = adding ? (member.prefix.includes(sign) ? member.prefix : (sign + member.prefix).split("").sort().join("")) : member.prefix.replace(sign, "");
      if (target && fold(target) === fold(state.nick || "") && ch === "o") c.operator = adding;
    } else if ("kbl".includes(ch)) {
      if (adding || ch !== "l") arg++;
    } else if (ch === "t") {
      c.topicLocked = adding;
    }
  }
  addEvent(c, `${from} set mode ${p.slice(1).join(" ")}`, message);
  if (c === state.current) { renderMembers($("member-list"), c.members); renderTopic(); }
}

function away(nick, reason) {
  for (const c of state.conversations.values()) {
    const member = c.members.get(fold(nick));
    if (member) member.away = reason || null;
  }
  if (state.current) renderMembers($("member-list"), state.current.members);
}

function privmsg(message, from, fromHistory) {
  const [target, raw = ""] = message.params;
  if (!message.source || !message.source.includes("!")) {
    // A server notice: shown in the conversation in front.
    if (state.registered) notice(state.current, stripFormatting(raw), false);
    return;
  }
  const mine = fold(from) === fold(state.nick || "");
  const name = isRoom(target) ? target : mine ? target : from;
  let text = raw;
  let action = false;
  if (text.startsWith("\x01")) {
    if (!text.startsWith("\x01ACTION")) return;  // other CTCP: not shown
    action = true;
    text = text.replace(/^\x01ACTION ?/, "").replace(/\x01$/, "");
  }
  text = stripFormatting(text);
  const c = conversation(name);
  const msgid = message.tags.msgid;
  if (msgid && c.msgids.has(msgid)) return;
  const mention = !mine && state.nick && new RegExp(`(^|[^\\w])${state.nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}($|[^\\w])`, "i").test(text);
  const item = { kind: "message", nick: from, text, action, notice: message.command === "NOTICE", time: time(message), msgid, mention };
  insert(c, item);
  if (fromHistory) return;
  const seen = c === state.current && !document.hidden;
  // Read as it arrives: no "new messages" line above it, unless one is there already.
  if (seen && !c.items.some((i) => i !== item && i.kind === "message" && i.nick !== state.nick && c.lineMarker && i.time > c.lineMarker)) {
    c.lineMarker = item.time;
  }
  if (!mine && !seen && !(c.readMarker && item.time <= c.readMarker)) {
    c.unread += 1;
    if (mention || !c.room) c.mentions += 1;
    renderSidebar();
  }
  if (!mine && (mention || !c.room) && document.hidden) notify(c, item);
  if (c === state.current) {
    renderMessages(true);
    if (!mine) $("announcer").textContent = `${from}${c.room ? ` in ${c.name}` : ""}: ${text}`;
    if (!document.hidden) markRead(c);
  }
}

function insert(c, item) {
  if (item.msgid) c.msgids.add(item.msgid);
  // Keep time order: history arrives in pages, live messages at the end.
  let i = c.items.length;
  while (i > 0 && c.items[i - 1].time > item.time) i--;
  c.items.splice(i, 0, item);
}

function addEvent(c, text, message) {
  if (!c) return;
  const msgid = message?.tags?.msgid;
  if (msgid && c.msgids.has(msgid)) return;
  insert(c, { kind: "event", text, time: message ? time(message) : new Date(), msgid });
  if (c === state.current) renderMessages(true);
}

function notice(c, text, failed) {
  if (!c) {
    // No conversation open yet: under the conversations list, not over the connection state.
    $("server-notice").textContent = text;
    $("server-notice").classList.toggle("bad", failed);
    return;
  }
  insert(c, { kind: "message", nick: "server", text, notice: true, failed, time: new Date() });
  if (c === state.current) renderMessages(true);
}

function batchBoundary(message) {
  const [ref, type, target] = message.params;
  if (ref.startsWith("+")) {
    state.batches.set(ref.slice(1), { type, target, messages: [] });
    return;
  }
  const batch = state.batches.get(ref.slice(1));
  state.batches.delete(ref.slice(1));
  if (!batch) return;
  if (batch.type === "draft/chathistory-targets") {
    for (const m of batch.messages) {
      const name = m.params[1];
      if (name && !isRoom(name)) { const c = conversation(name); if (!c.items.length) send("CHATHISTORY", ["LATEST", name, "*", String(historyPage)]); }
    }
    return;
  }
  if (batch.type !== "chathistory") return;
  const c = conversation(batch.target);
  const before = c.items.length;
  for (const m of batch.messages) {
    const from = nickOf(m.source);
    if (m.command === "PRIVMSG" || m.command === "NOTICE") privmsg(m, from, true);
  }
  const older = c.loadingOlder;
  if (older) {
    c.loadingOlder = false;
    if (c.items.length === before) c.noOlder = true;
  } else if (batch.messages.length < historyPage && before === 0) {
    c.noOlder = true;
  }
  if (c === state.current) renderMessages(!older, older);
}

// MARK: rendering

function renderSidebar() {
  const items = [...state.conversations.values()].sort((a, b) => (a.room === b.room ? a.key.localeCompare(b.key) : a.room ? -1 : 1));
  $("conversations").replaceChildren(...items.map((c) => {
    const label = `${c.name}${c.unread ? `, ${c.unread} unread` : ""}${c.mentions ? `, ${c.mentions} for you` : ""}`;
    return el("li", { class: c.unread ? "unread" : "" },
      el("button", { type: "button", "aria-current": c === state.current ? "true" : "false", "aria-label": label, onclick: () => show(c) },
        el("span", { class: "name" }, c.name),
        c.mentions ? el("span", { class: "badge mention", "aria-hidden": "true" }, `@${c.mentions}`) : null,
        c.unread ? el("span", { class: "badge", "aria-hidden": "true" }, String(c.unread)) : null));
  }));
}

function renderMessages(stickToBottom = false, keepPosition = false) {
  const list = $("messages");
  const c = state.current;
  if (!c) { list.replaceChildren(); return; }
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const fromBottom = list.scrollHeight - list.scrollTop;
  renderConversation(list, c, state.nick);
  if (keepPosition) list.scrollTop = list.scrollHeight - fromBottom;
  else if (atBottom || stickToBottom === "force") list.scrollTop = list.scrollHeight;
}

function renderTopic() {
  const c = state.current;
  $("topic").textContent = c ? (c.room ? c.topic || "No topic" : `Private conversation with ${c.name}`) : "";
  $("edit-topic").hidden = !(c && c.room && c.joined && (c.operator || !c.topicLocked));
}

function show(c) {
  state.current = c;
  if (c && performance.getEntriesByName("securechat-first-room").length === 0) performance.mark("securechat-first-room");
  $("conversation-title").textContent = c ? c.name : "SecureChat";
  $("members").hidden = !c || !c.room;
  $("topic-form").hidden = true;
  $("topic").hidden = false;
  if (c) {
    // The line where unread messages begin: after what the server says was read, or what this
    // page has shown (its own marker may not have been sent yet).
    const read = [c.readMarker, c.sentMarker].filter(Boolean).sort((x, y) => y - x)[0];
    c.lineMarker = read ?? c.lineMarker;
    c.unread = 0;
    c.mentions = 0;
    renderMembers($("member-list"), c.members);
    markRead(c);
  }
  renderTopic();
  renderSidebar();
  renderMessages("force");
  closeDrawers();
  $("input").focus();
}

function markRead(c) {
  if (!state.caps.has("draft/read-marker")) return;
  const last = c.items.length ? c.items[c.items.length - 1].time : null;
  if (!last || (c.sentMarker && c.sentMarker >= last)) return;
  c.sentMarker = last;
  // At most every 3 s per conversation, within the server's flood budget.
  clearTimeout(c.markTimer);
  c.markPending = true;
  c.markTimer = setTimeout(() => sendMarker(c), c.markedAt && Date.now() - c.markedAt < 3000 ? 3000 : 0);
  c.markedAt = Date.now();
}

function sendMarker(c) {
  c.markPending = false;
  send("MARKREAD", [c.name, "timestamp=" + c.sentMarker.toISOString()]);
}

/** Leaving the page: the read positions still waiting for their turn go now, as chat-client's do on quit. */
function flushMarkers() {
  for (const c of state.conversations.values()) {
    if (c.markPending) { clearTimeout(c.markTimer); sendMarker(c); }
  }
}

function loadOlder() {
  const c = state.current;
  if (!c || c.loadingOlder || c.noOlder || !state.caps.has("draft/chathistory")) return;
  const oldest = c.items.find((i) => i.msgid);
  c.loadingOlder = true;
  send("CHATHISTORY", ["BEFORE", c.name, oldest ? "msgid=" + oldest.msgid : "timestamp=" + new Date().toISOString(), String(historyPage)]);
}

function notify(c, item) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const n = new Notification(c.room ? `${item.nick} in ${c.name}` : item.nick, { body: item.text.slice(0, 200), tag: c.key });
  n.onclick = () => { window.focus(); show(c); n.close(); };
}

function updateNotificationButton() {
  $("enable-notifications").hidden = !("Notification" in window) || Notification.permission !== "default";
}

function renderRoomList() {
  const rooms = (state.listing || []).sort((a, b) => b.users - a.users || a.name.localeCompare(b.name));
  state.listing = null;
  $("browser-state").textContent = rooms.length ? `${rooms.length} rooms` : "No rooms yet: create one by joining it.";
  $("room-list").replaceChildren(...rooms.map((r) => el("li", {},
    el("strong", {}, r.name),
    el("button", { type: "button", onclick: () => { join(r.name); $("room-browser").close(); } }, `Join (${r.users})`),
    el("span", { class: "topic", dir: "auto" }, stripFormatting(r.topic)))));
}

function closeDrawers() {
  for (const id of ["sidebar", "members"]) $(id).classList.remove("open");
  $("toggle-sidebar").setAttribute("aria-expanded", "false");
  $("toggle-members").setAttribute("aria-expanded", "false");
}

// MARK: what the user types

function join(name) {
  let room = name.trim();
  if (!room) return;
  if (!room.startsWith("#")) room = "#" + room;
  const existing = conversation(room, false);
  if (existing && existing.joined) { show(existing); return; }
  state.pendingSwitch = fold(room);
  send("JOIN", [room]);
}

function say(c, text, action = false) {
  // Room for the prefix the server adds when relaying (nick!user@host), as chat-client does.
  const budget = Math.max(64, state.maxLine - 2 - utf8Length(`:${state.nick}!${state.nick}@user/${state.nick} PRIVMSG ${c.name} :`) - (action ? 9 : 0) - 60);
  for (const piece of splitText(text, budget)) {
    const sent = send("PRIVMSG", [c.name, action ? `\x01ACTION ${piece}\x01` : piece]);
    if (!sent) { notice(c, "Not sent: not connected. It will not be sent later; copy it if you need it.", true); return; }
    if (!state.caps.has("echo-message")) privmsg({ params: [c.name, action ? `\x01ACTION ${piece}\x01` : piece], tags: {}, source: `${state.nick}!${state.nick}@local`, command: "PRIVMSG" }, state.nick, false);
  }
}

const help = "Commands: /join #room, /part [reason], /me action, /msg nick text, /topic text, /away [reason] (empty: back), /list";

function submit(text) {
  const c = state.current;
  if (text.startsWith("/") && !text.startsWith("//")) {
    const [, command, rest = ""] = text.match(/^\/(\S+)\s*([\s\S]*)$/) || [];
    switch ((command || "").toLowerCase()) {
      case "join": case "j": join(rest.split(" ")[0]); return;
      case "part": case "leave": if (c && c.room) send("PART", rest ? [c.name, rest] : [c.name]); else if (c) closeConversation(c); return;
      case "me": if (c && rest) say(c, rest, true); return;
      case "msg": case "query": {
        const [, nick, body] = rest.match(/^(\S+)\s*([\s\S]*)$/) || [];
        if (!nick) { notice(c, "Usage: /msg nick text", true); return; }
        const target = conversation(nick);
        show(target);
        if (body) say(target, body);
        return;
      }
      case "topic": if (c && c.room) send("TOPIC", [c.name, rest]); return;
      case "away": send("AWAY", rest ? [rest] : []); return;
      case "list": openRoomBrowser(); return;
      case "help": notice(c, help, false); return;
      default: notice(c, `Unknown command /${command}. ${help}`, true); return;
    }
  }
  if (!c) { notice(null, "Join a room first.", true); return; }
  say(c, text.startsWith("//") ? text.slice(1) : text);
}

function closeConversation(c) {
  state.conversations.delete(c.key);
  state.current = null;
  show([...state.conversations.values()][0] || null);
}

function openRoomBrowser() {
  state.listing = [];
  $("browser-state").textContent = "Loading…";
  $("room-list").replaceChildren();
  $("room-browser").showModal();
  send("LIST");
}

/** Tab: the member name starting with the word before the caret; Tab again: the next one. */
function completeNick(input) {
  const c = state.current;
  if (!c) return;
  const caret = input.selectionStart;
  const last = state.completion;
  let start;
  let word;
  if (last && last.end === caret && input.value.slice(last.start, caret) === last.inserted) {
    ({ start, word } = last);
  } else {
    word = input.value.slice(0, caret).match(/(\S*)$/)[1];
    start = caret - word.length;
    if (!word) return;
  }
  const matches = [...c.members.values()].map((m) => m.nick).filter((n) => fold(n).startsWith(fold(word))).sort();
  if (!matches.length) return;
  const index = last && last.word === word && last.start === start ? (last.index + 1) % matches.length : 0;
  const inserted = matches[index] + (start === 0 ? ": " : " ");
  input.value = input.value.slice(0, start) + inserted + input.value.slice(caret);
  input.setSelectionRange(start + inserted.length, start + inserted.length);
  state.completion = { start, end: start + inserted.length, inserted, word, index };
}

function onKey(event) {
  const input = event.target;
  if (event.key === "Tab" && !event.shiftKey && input.value.trim()) {
    event.preventDefault();
    completeNick(input);
    return;
  }
  state.completion = null;
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  } else if (event.key === "ArrowUp" && (input.value === "" || input.selectionStart === 0) && state.inputHistory.length) {
    event.preventDefault();
    state.historyIndex = Math.min(state.historyIndex + 1, state.inputHistory.length - 1);
    input.value = state.inputHistory[state.inputHistory.length - 1 - state.historyIndex];
  } else if (event.key === "ArrowDown" && state.historyIndex >= 0) {
    event.preventDefault();
    state.historyIndex -= 1;
    input.value = state.historyIndex < 0 ? "" : state.inputHistory[state.inputHistory.length - 1 - state.historyIndex];
  }
}

function onSubmit(event) {
  event.preventDefault();
  const input = $("input");
  const text = input.value;
  if (!text.trim()) return;
  input.value = "";
  state.historyIndex = -1;
  state.inputHistory.push(text);
  if (state.inputHistory.length > 100) state.inputHistory.shift();
  // Shift+Enter lines are sent as separate messages, in order.
  for (const line of text.split("\n")) if (line.trim()) submit(line);
  autosize(input);
}

function autosize(input) {
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, 160) + "px";
}

function signOut() {
  flushMarkers();
  state.signingOut = true;
  state.password = null;
  send("QUIT", ["Signed out"]);
  state.socket?.close();
  state.conversations.clear();
  state.current = null;
  renderSidebar();
  showSignIn();
}

function setUp() {
  $("signin-form").addEventListener("submit", signIn);
  $("composer").addEventListener("submit", onSubmit);
  $("input").addEventListener("keydown", onKey);
  $("input").addEventListener("input", (e) => autosize(e.target));
  $("join-form").addEventListener("submit", (e) => { e.preventDefault(); join($("join-name").value); $("join-name").value = ""; });
  $("browse-rooms").addEventListener("click", openRoomBrowser);
  $("sign-out").addEventListener("click", signOut);
  $("reconnect").addEventListener("click", connect);
  $("messages").addEventListener("scroll", () => { if ($("messages").scrollTop < 60) loadOlder(); });
  $("edit-topic").addEventListener("click", () => {
    $("topic-form").hidden = false;
    $("topic").hidden = true;
    $("edit-topic").hidden = true;
    $("topic-input").value = state.current?.topic || "";
    $("topic-input").focus();
  });
  $("cancel-topic").addEventListener("click", () => { $("topic-form").hidden = true; $("topic").hidden = false; renderTopic(); });
  $("topic-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (state.current) send("TOPIC", [state.current.name, $("topic-input").value]);
    $("topic-form").hidden = true;
    $("topic").hidden = false;
    renderTopic();
  });
  $("enable-notifications").addEventListener("click", async () => { await Notification.requestPermission(); updateNotificationButton(); });
  for (const [button, panel] of [["toggle-sidebar", "sidebar"], ["toggle-members", "members"]]) {
    $(button).addEventListener("click", () => {
      const open = !$(panel).classList.contains("open");
      closeDrawers();
      $(panel).classList.toggle("open", open);
      $(button).setAttribute("aria-expanded", String(open));
    });
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden && state.current) { state.current.unread = 0; state.current.mentions = 0; markRead(state.current); renderSidebar(); } });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeDrawers(); });
  window.addEventListener("pagehide", flushMarkers);
  showSignIn();
  performance.mark("securechat-signin-form");
}

setUp();
