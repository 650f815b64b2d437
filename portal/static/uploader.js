/* Sinetti's uploader: on the compose page, files go up as soon as they are chosen, in chunks,
   with a progress bar per file and for all of them together. Without this script the form
   posts its files the plain way (multipart), so nothing here is needed to send a message.

   The protocol (portal/views/uploads.py): POST the file's name, size and fingerprint to the
   form's data-chunked-upload URL; the answer says where the upload stands (a file chosen again
   after a reload continues). Then PUT chunks of the size the server names, each starting
   where the server has the upload (header Upload-Offset). The server, not the browser, decides
   the offset: after a lost connection, a timeout or a 409 the script asks (GET) or takes the
   offset from the answer. Network errors and 5xx are retried with back-off (1 s doubling to
   30 s, for as long as the page is open, and at once when the browser is back online).

   - A finished file moves to the list of attached files (the server renders that list; it is
     fetched again from the compose page).
   - Send waits while files are being uploaded, says so, and sends when they are done.
   - Every text comes from the page (data-* attributes, translated there).
   - Files are announced and uploaded one at a time: the first file of a message makes its
     draft, and one upload at a time makes the most of the connection anyway. */
(function () {
  "use strict";

  var FIRST_DELAY = 1000;
  var MAX_DELAY = 30000;
  var STALLED_AFTER = 45000;      // no progress for this long: the chunk is sent again
  var REQUEST_TIMEOUT = 30000;    // the small JSON requests
  var RATE_WINDOW = 10000;        // time left: the rate over the last 10 s
  var ANNOUNCE_EVERY = 10000;     // progress announcements: at most every 10 s, per 10 %
  var UNITS = ["B", "kB", "MB", "GB"];

  var up = null;       // the uploader of the compose form on the page, if any
  var entries = [];    // every file chosen on this page, in order
  var nextKey = 1;

  // -- small helpers ----------------------------------------------------------------------

  function fill(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : match;
    });
  }

  function lang() { return document.documentElement.getAttribute("lang") || "en"; }

  function number(value, decimals) {
    try {
      return new Intl.NumberFormat(lang(), {
        minimumFractionDigits: decimals, maximumFractionDigits: decimals
      }).format(value);
    } catch (e) {
      return value.toFixed(decimals);
    }
  }

  // As portal.services.files.format_size: binary multiples, one decimal below 100.
  function formatSize(size) {
    var value = size;
    var unit = 0;
    while (value >= 1024 && unit < UNITS.length - 1) { value /= 1024; unit++; }
    var whole = unit === 0 || value >= 100 || value === Math.floor(value);
    return number(value, whole ? 0 : 1) + "\u00a0" + UNITS[unit];
  }

  function percentOf(done, total) {
    if (!total) { return 100; }
    return Math.min(100, Math.floor((done / total) * 100));
  }

  function csrfToken() {
    try {
      var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      return headers["X-CSRF-Token"] || "";
    } catch (e) {
      return "";
    }
  }

  function parseJson(text) {
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  /* The outcome of a request: ok (2xx), retry (no answer, 5xx, 408, 429) or refused (other,
     with the server's own words when it gave any). */
  function outcome(status, text) {
    var data = parseJson(text);
    var result = { status: status, data: data, ok: status >= 200 && status < 300 };
    result.retry = !result.ok && (status === 0 || status >= 500 || status === 408 || status === 429);
    if (!result.ok && !result.retry) {
      result.error = (data && typeof data.error === "string" && data.error) || (up ? up.texts.failed : "");
    }
    return result;
  }

  function request(method, url, body) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT) : null;
    var headers = { "Accept": "application/json", "X-CSRF-Token": csrfToken() };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    return fetch(url, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      return response.text().then(function (text) { return outcome(response.status, text); });
    }, function () {
      return outcome(0, "");
    }).then(function (result) {
      if (timer) { clearTimeout(timer); }
      return result;
    });
  }

  /* On its way up (counted in the progress). */
  function busy(entry) {
    return ["queued", "announcing", "waiting", "uploading"].indexOf(entry.state) !== -1;
  }

  function anyBusy() { return entries.some(busy); }

  /* Sending waits for these: uploads, and removals the server has not confirmed yet. */
  function anyPending() {
    return entries.some(function (entry) { return busy(entry) || entry.state === "removing"; });
  }

  /* Answers that arrive after the page was swapped for another belong to nobody. */
  function alive(entry) { return up !== null && entry.owner === up; }

  function visible() {
    return entries.filter(function (entry) { return entry.state !== "removed" && entry.state !== "done"; });
  }

  // -- the page ---------------------------------------------------------------------------

  function bind(form) {
    var input = form.querySelector("input[type=file]");
    var box = document.getElementById("uploads");
    if (!input || !box) { return; }
    if (up && up.form === form) { return; }
    stopAll();
    entries = [];
    var data = box.dataset;
    up = {
      form: form,
      url: form.getAttribute("data-chunked-upload"),
      input: input,
      box: box,
      list: box.querySelector(".upload-list"),
      total: box.querySelector("#uploads-total"),
      totalNumbers: box.querySelector("[data-total-numbers]"),
      timeLeft: box.querySelector("[data-time-left]"),
      status: document.getElementById("uploads-status"),
      sendWaiting: document.getElementById("send-waiting"),
      texts: {
        fileLabel: data.fileLabel,
        numbers: data.numbers,
        minutesLeft: data.minutesLeft,
        underAMinute: data.underAMinute,
        queued: data.queued,
        retrying: data.retrying,
        offline: data.offline,
        removing: data.removing,
        failed: data.failed,
        remove: data.remove,
        announceProgress: data.announceProgress,
        announceDone: data.announceDone,
        announceAllDone: data.announceAllDone,
        announceRemoved: data.announceRemoved,
        announceError: data.announceError
      },
      room: Number(input.getAttribute("data-max-bytes")),
      statusAt: 0,
      announcing: null,
      current: null,
      sendWanted: null,
      samples: [],
      announcedStep: -1,
      announcedAt: 0,
      renderTimer: null,
      refreshes: 0
    };
    // The files travel in chunks: the form itself posts none, and needs no Attach button.
    input.removeAttribute("name");
    input.addEventListener("change", chosen);
    var attach = form.querySelector("[data-attach-button]");
    if (attach) {
      attach.hidden = true;
      attach.disabled = true;  // no implicit submission by Enter either
    }
    var kept = document.getElementById("kept-attachments");
    if (kept && kept.hasAttribute("data-remaining")) {
      up.room = Number(kept.getAttribute("data-remaining"));
    }
  }

  function init() {
    var form = document.querySelector("form[data-chunked-upload]");
    if (form) { bind(form); } else if (up && !document.body.contains(up.form)) { stopAll(); up = null; }
  }

  /* The page was swapped for another (htmx): the uploads of the old one stop; the server
     keeps what it has, and choosing the files again continues them. */
  function stopAll() {
    entries.forEach(function (entry) {
      if (entry.xhr) { entry.xhr.onabort = null; entry.xhr.abort(); entry.xhr = null; }
      clearTimers(entry);
      if (busy(entry)) { entry.state = "removed"; }
    });
  }

  function clearTimers(entry) {
    if (entry.timer) { clearTimeout(entry.timer); entry.timer = null; }
    if (entry.ticker) { clearInterval(entry.ticker); entry.ticker = null; }
    if (entry.watchdog) { clearTimeout(entry.watchdog); entry.watchdog = null; }
    entry.retry = null;
  }

  function announce(text) {
    if (!up || !up.status || !text) { return; }
    var now = Date.now();
    var before = up.status.textContent;
    // Words that follow at once are joined: a screen reader may skip a change made meanwhile.
    if (before && before !== text && now - up.statusAt < 1000) { text = before + " " + text; }
    // The same words twice are announced again only when the region changes in between.
    if (before === text) { up.status.textContent = ""; }
    up.status.textContent = text;
    up.statusAt = now;
  }

  // -- choosing files ---------------------------------------------------------------------

  function fingerprint(file) {
    return file.name + "|" + file.size + "|" + file.lastModified;
  }

  /* Uploads the server lists as not complete (after a reload): their size is already counted
     against the room left, and choosing the file again continues them. The server keeps only a
     keyed hash of a file's fingerprint, so the page names each by its name and size; the
     server recognises the file itself when it is announced again. */
  function unfinishedItems() {
    var kept = document.getElementById("kept-attachments");
    return kept ? Array.prototype.slice.call(kept.querySelectorAll("li[data-upload-id]")) : [];
  }

  function serverHas(file) {
    return unfinishedItems().some(function (item) {
      return item.getAttribute("data-name") === file.name &&
        item.getAttribute("data-size") === String(file.size);
    });
  }

  function notYetCounted() {
    return entries.reduce(function (sum, entry) {
      var counted = entry.serverCounted || entry.state !== "queued" && entry.state !== "announcing";
      return sum + (busy(entry) && !counted ? entry.size : 0);
    }, 0);
  }

  function chosen() {
    var input = up.input;
    var files = Array.prototype.slice.call(input.files || []);
    var fresh = [];
    var counted = 0;  // chosen, but already counted against the room left
    files.forEach(function (file) {
      var print = fingerprint(file);
      var already = entries.some(function (entry) { return busy(entry) && entry.fingerprint === print; });
      var known = !already && serverHas(file);
      if (already || known) { counted += file.size; }
      if (!already) { fresh.push({ file: file, print: print, known: known }); }
    });
    // portal.js checks the size when the change reaches the document, against data-max-bytes:
    // the room left, plus what the server already counts (a continued upload, say).
    var room = Math.max(up.room - notYetCounted(), 0) + counted;
    input.setAttribute("data-max-bytes", String(room));
    var total = files.reduce(function (sum, file) { return sum + file.size; }, 0);
    if (total > room) { return; }  // portal.js says so beside the field
    fresh.forEach(function (item) { add(item.file, item.print, item.known); });
    // The chosen files are in the list below now; the field is free for more.
    setTimeout(function () { input.value = ""; }, 0);
    pump();
  }

  function add(file, print, known) {
    var entry = {
      owner: up,
      key: nextKey++,
      file: file,
      name: file.name,
      size: file.size,
      fingerprint: print,
      serverCounted: known,
      state: "queued",
      id: null,
      offset: 0,
      sent: 0,
      chunkSize: 0,
      delay: 0,
    };
    entries.push(entry);
    build(entry);
    render();
  }

  function build(entry) {
    var texts = up.texts;
    var item = document.createElement("li");
    item.className = "upload";
    var name = document.createElement("span");
    name.className = "file-name";
    name.textContent = entry.name;
    var progress = document.createElement("progress");
    progress.id = "upload-" + entry.key;
    progress.max = Math.max(entry.size, 1);
    progress.value = 0;
    progress.setAttribute("aria-label", fill(texts.fileLabel, { name: entry.name }));
    progress.setAttribute("aria-describedby", "upload-" + entry.key + "-numbers upload-" + entry.key + "-state");
    var numbers = document.createElement("span");
    numbers.className = "upload-numbers";
    numbers.id = "upload-" + entry.key + "-numbers";
    var state = document.createElement("span");
    state.className = "upload-state";
    state.id = "upload-" + entry.key + "-state";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "link-button";
    button.textContent = texts.remove;
    var hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = " " + entry.name;
    button.appendChild(hidden);
    button.addEventListener("click", function () { remove(entry); });
    item.appendChild(name);
    item.appendChild(button);
    item.appendChild(progress);
    item.appendChild(numbers);
    item.appendChild(state);
    up.list.appendChild(item);
    entry.el = { item: item, progress: progress, numbers: numbers, state: state, button: button };
  }

  // -- the queue --------------------------------------------------------------------------

  function first(state) {
    for (var i = 0; i < entries.length; i++) {
      if (entries[i].state === state) { return entries[i]; }
    }
    return null;
  }

  function pump() {
    if (!up) { return; }
    if (!up.announcing) {
      var next = first("queued");
      if (next) { begin(next); }
    }
    if (!up.current) {
      var ready = first("waiting");
      if (ready) {
        up.current = ready;
        ready.state = "uploading";
        sendChunk(ready);
      }
    }
    render();
    settled();
  }

  function begin(entry) {
    entry.state = "announcing";
    up.announcing = entry;
    request("POST", up.url, {
      filename: entry.name,
      size: entry.size,
      type: entry.file.type || "",
      fingerprint: entry.fingerprint
    }).then(function (result) {
      if (!alive(entry)) { return; }
      if (entry.state === "removed") {
        up.announcing = null;
        if (result.ok && result.data) { throwAway(result.data); }
        pump();
        return;
      }
      if (result.ok && result.data) {
        up.announcing = null;
        entry.delay = 0;
        clearTimers(entry);
        took(entry, result.data);
        changed();
        pump();
      } else if (result.retry) {
        later(entry, begin);
      } else {
        up.announcing = null;
        fail(entry, result.error);
        pump();
      }
    });
  }

  /* A removed file whose announcement was still on its way: the server throws it away. */
  function throwAway(data) {
    if (data.complete && data.attachment) {
      request("POST", "/compose/attachments/" + data.attachment.id + "/remove").then(changed);
    } else if (data.id) {
      request("DELETE", up.url + "/" + encodeURIComponent(data.id)).then(changed);
    }
  }

  function took(entry, data) {
    if (data.complete) { finish(entry, data.attachment); return; }
    entry.id = data.id;
    entry.offset = entry.sent = data.offset;
    entry.chunkSize = data.chunk_size;
    entry.serverCounted = true;
    entry.state = "waiting";
    hideUnfinished();
  }

  function sendChunk(entry) {
    clearTimers(entry);
    var start = entry.offset;
    var end = Math.min(start + entry.chunkSize, entry.size);
    var xhr = new XMLHttpRequest();
    entry.xhr = xhr;
    entry.sent = start;
    xhr.open("PUT", up.url + "/" + encodeURIComponent(entry.id));
    xhr.setRequestHeader("Upload-Offset", String(start));
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    function lost() {
      if (entry.xhr !== xhr) { return; }
      entry.xhr = null;
      clearTimers(entry);
      entry.sent = entry.offset;
      later(entry, where);
    }
    function watch() {
      if (entry.watchdog) { clearTimeout(entry.watchdog); }
      entry.watchdog = setTimeout(function () {
        xhr.onabort = null;
        xhr.abort();
        lost();
      }, STALLED_AFTER);
    }
    xhr.upload.onprogress = function (event) {
      if (entry.xhr !== xhr) { return; }
      entry.sent = Math.min(start + event.loaded, end);
      watch();
      scheduleRender();
    };
    xhr.onload = function () {
      if (entry.xhr !== xhr) { return; }
      entry.xhr = null;
      clearTimers(entry);
      var result = outcome(xhr.status, xhr.responseText);
      var data = result.data || {};
      if (result.ok) {
        entry.delay = 0;
        if (data.complete) { finish(entry, data.attachment); return; }
        entry.offset = data.offset;
        sendChunk(entry);
      } else if (xhr.status === 409 && typeof data.offset === "number") {
        entry.offset = data.offset;  // the server has more (or less) than we thought
        sendChunk(entry);
      } else if (xhr.status === 404) {
        fail(entry, result.error);  // a finished upload is answered as complete
      } else if (result.retry || data.reason === "length") {
        entry.sent = entry.offset;
        later(entry, where);
      } else {
        fail(entry, result.error);
      }
    };
    xhr.onerror = lost;
    xhr.ontimeout = lost;
    xhr.onabort = lost;
    watch();
    xhr.send(entry.file.slice(start, end));
    entry.el.state.textContent = "";
    render();
  }

  /* After a failure: where does the server have this upload? */
  function where(entry) {
    request("GET", up.url + "/" + encodeURIComponent(entry.id)).then(function (result) {
      if (!alive(entry) || entry.state !== "uploading") { return; }
      if (result.ok && result.data) {
        if (result.data.complete) { finish(entry, result.data.attachment); return; }
        entry.offset = result.data.offset;
        sendChunk(entry);
      } else if (result.status === 404) {
        fail(entry, result.error);  // a finished upload is answered as complete
      } else if (result.retry) {
        later(entry, where);
      } else {
        fail(entry, result.error);
      }
    });
  }


  function later(entry, action) {
    entry.delay = entry.delay ? Math.min(entry.delay * 2, MAX_DELAY) : FIRST_DELAY;
    var due = Date.now() + entry.delay;
    entry.retry = action;
    function show() {
      var seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      entry.el.state.textContent = navigator.onLine === false ? up.texts.offline
        : fill(up.texts.retrying, { seconds: seconds });
    }
    if (entry.ticker) { clearInterval(entry.ticker); }
    entry.ticker = setInterval(show, 1000);
    entry.timer = setTimeout(function () { retryNow(entry); }, entry.delay);
    show();
    if (entry.delay === FIRST_DELAY) {  // once per outage, not at every try
      announce(fill(up.texts.announceError, { name: entry.name, error: entry.el.state.textContent }));
    }
    entry.el.item.setAttribute("data-state", "retrying");
    render();
  }

  function retryNow(entry) {
    var action = entry.retry;
    if (!action) { return; }
    clearTimers(entry);
    entry.el.item.removeAttribute("data-state");
    action(entry);
  }

  function finish(entry, attachment) {
    clearTimers(entry);
    entry.xhr = null;
    entry.state = "done";
    entry.attachment = attachment || {};
    entry.offset = entry.sent = entry.size;
    if (up.current === entry) { up.current = null; }
    if (up.announcing === entry) { up.announcing = null; }
    up.batchDone = (up.batchDone || 0) + entry.size;
    var hadFocus = entry.el.item.contains(document.activeElement);
    entry.el.item.remove();
    announce(fill(up.texts.announceDone, { name: entry.name }));
    changed().then(function () {
      if (!hadFocus || !up) { return; }
      var kept = document.getElementById("kept-attachments");
      var moved = kept && kept.querySelector('li[data-attachment-id="' + entry.attachment.id + '"] button');
      (moved || up.input).focus();
    });
    pump();
  }

  function fail(entry, message) {
    if (entry.xhr) { entry.xhr.onabort = null; entry.xhr.abort(); entry.xhr = null; }
    clearTimers(entry);
    entry.state = "failed";
    entry.error = message || up.texts.failed;
    if (up.current === entry) { up.current = null; }
    entry.el.item.setAttribute("data-state", "failed");
    entry.el.state.textContent = entry.error;
    announce(fill(up.texts.announceError, { name: entry.name, error: entry.error }));
    changed();  // the room left may be other than this page thought
    if (up.sendWanted) {
      up.sendWanted = null;
      up.sendWaiting.textContent = up.sendWaiting.getAttribute("data-cancelled");
    }
    pump();
  }

  // -- removing ---------------------------------------------------------------------------

  function remove(entry) {
    if (entry.state === "removed" || entry.state === "removing") { return; }
    var wasAnnouncing = entry.state === "announcing" && up.announcing === entry && !entry.timer;
    if (entry.xhr) { entry.xhr.onabort = null; entry.xhr.abort(); entry.xhr = null; }
    clearTimers(entry);
    if (up.current === entry) { up.current = null; }
    if (up.announcing === entry && !wasAnnouncing) { up.announcing = null; }
    if (wasAnnouncing || !entry.id) {
      entry.state = "removed";  // an announcement on its way is thrown away when it answers
      drop(entry);
      return;
    }
    entry.state = "removing";
    // Not disabled: a disabled button loses the focus, and the next file should get it.
    entry.el.button.setAttribute("aria-disabled", "true");
    entry.el.state.textContent = up.texts.removing;
    entry.delay = 0;
    deleteUpload(entry);
  }

  function deleteUpload(entry) {
    request("DELETE", up.url + "/" + encodeURIComponent(entry.id)).then(function (result) {
      if (!alive(entry)) { return; }
      if (result.ok || !result.retry) {
        entry.state = "removed";
        drop(entry);
        changed();
      } else {
        later(entry, deleteUpload);
      }
    });
  }

  function drop(entry) {
    var item = entry.el.item;
    var hadFocus = item.contains(document.activeElement);
    var next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    announce(fill(up.texts.announceRemoved, { name: entry.name }));
    if (hadFocus) {
      var button = next && next.querySelector("button");
      (button || up.input).focus();
    }
    pump();
  }

  // -- the list of attached files, from the server ----------------------------------------

  /* Something changed on the server (a file finished, was removed or announced): fetch the
     attached files and the room left again. Only the newest answer is used. */
  function changed() {
    up.refreshes++;
    return refresh();
  }

  function refresh() {
    var mine = up.refreshes;
    // The page of the form (the address bar may show another URL after an htmx request).
    var page = up.form.getAttribute("action") || window.location.pathname;
    return fetch(page, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (!html || !up || mine !== up.refreshes) { return; }
      var parsed = new DOMParser().parseFromString(html, "text/html");
      var fresh = parsed.getElementById("kept-attachments");
      var old = document.getElementById("kept-attachments");
      if (!fresh || !old) { return; }
      // The warning about too large files names the room left: keep it current.
      var warning = document.getElementById("attachments-too-large");
      var newWarning = parsed.getElementById("attachments-too-large");
      if (warning && newWarning) {
        var message = newWarning.getAttribute("data-message");
        warning.setAttribute("data-message", message);
        if (warning.textContent && warning.textContent !== message) { warning.textContent = message; }
      }
      var adopted = document.importNode(fresh, true);
      old.replaceWith(adopted);
      if (window.htmx) { window.htmx.process(adopted); }
      keptChanged();
    }, function () { /* the list is refreshed with the next change */ });
  }

  /* The list of attached files is new (our refresh, or htmx after a Remove there). */
  function keptChanged() {
    var kept = document.getElementById("kept-attachments");
    if (!up || !kept) { return; }
    if (kept.hasAttribute("data-remaining")) { up.room = Number(kept.getAttribute("data-remaining")); }
    hideUnfinished();
  }

  /* An unfinished upload the server lists that this page is uploading right now is shown
     here, with its progress, not twice. */
  function hideUnfinished() {
    var live = {};
    entries.forEach(function (entry) {
      if (entry.id && entry.state !== "removed" && entry.state !== "done") { live[entry.id] = true; }
    });
    var left = 0;
    unfinishedItems().forEach(function (item) {
      var mineNow = !!live[item.getAttribute("data-upload-id")];
      item.hidden = mineNow;
      if (!mineNow) { left++; }
    });
    var section = document.querySelector("#kept-attachments [data-unfinished]");
    if (section) { section.hidden = left === 0; }
  }

  // -- progress -----------------------------------------------------------------------------

  function scheduleRender() {
    var mine = up;
    if (mine && !mine.renderTimer) {
      mine.renderTimer = setTimeout(function () { mine.renderTimer = null; render(); }, 100);
    }
  }

  function timeLeft(sent, total) {
    var now = Date.now();
    var samples = up.samples;
    samples.push({ t: now, bytes: sent });
    while (samples.length > 2 && now - samples[0].t > RATE_WINDOW) { samples.shift(); }
    var oldest = samples[0];
    var retrying = entries.some(function (entry) { return busy(entry) && entry.retry; });
    if (retrying || now - oldest.t < 2000 || sent <= oldest.bytes) { return ""; }
    var seconds = (total - sent) / ((sent - oldest.bytes) / (now - oldest.t)) / 1000;
    if (seconds < 60) { return up.texts.underAMinute; }
    return fill(up.texts.minutesLeft, { minutes: number(Math.ceil(seconds / 60), 0) });
  }

  function render() {
    if (!up) { return; }
    var total = up.batchDone || 0;
    var sent = total;
    entries.forEach(function (entry) {
      if (!busy(entry)) { return; }
      total += entry.size;
      sent += entry.sent;
      var el = entry.el;
      el.progress.value = entry.sent;
      el.numbers.textContent = fill(up.texts.numbers, {
        done: formatSize(entry.sent), total: formatSize(entry.size), percent: percentOf(entry.sent, entry.size)
      });
      if ((entry.state === "queued" || entry.state === "waiting") && !entry.retry) {
        el.state.textContent = up.texts.queued;
      }
    });
    var shown = visible().length > 0;
    up.box.hidden = !shown;
    if (!anyBusy()) {
      up.box.querySelector(".upload-total").hidden = true;
      return;
    }
    up.box.querySelector(".upload-total").hidden = false;
    up.total.max = Math.max(total, 1);
    up.total.value = sent;
    var percent = percentOf(sent, total);
    up.totalNumbers.textContent = fill(up.texts.numbers, {
      done: formatSize(sent), total: formatSize(total), percent: percent
    });
    var left = timeLeft(sent, total);
    up.timeLeft.textContent = left;
    var step = Math.floor(percent / 10);
    var now = Date.now();
    if (step > up.announcedStep && now - up.announcedAt >= ANNOUNCE_EVERY && percent < 100) {
      if (up.announcedStep >= 0) {
        announce(fill(up.texts.announceProgress, { percent: percent }) + (left ? " " + left : ""));
      }
      up.announcedStep = step;
      up.announcedAt = now;
    }
  }

  /* Nothing is being uploaded any more: say so, start the next batch afresh, and send when
     the sender asked to. */
  function settled() {
    if (!up || anyPending()) { return; }
    if (up.batchDone) {
      announce(up.texts.announceAllDone);
      up.batchDone = 0;
    }
    up.samples = [];
    up.announcedStep = -1;
    up.announcedAt = 0;
    if (up.sendWanted) {
      var submitter = up.sendWanted;
      up.sendWanted = null;
      up.sendWaiting.textContent = "";
      if (typeof up.form.requestSubmit === "function") {
        up.form.requestSubmit(submitter);
      } else {
        submitter.click();
      }
    }
  }

  // -- sending ------------------------------------------------------------------------------

  /* Send while files are on their way: wait, say so, and send when they are done. Any other
     submission of the form waits for nothing: there is none while the Attach button is off. */
  function submitting(event) {
    if (!up || event.target !== up.form || !anyPending()) { return; }
    event.preventDefault();
    event.stopImmediatePropagation();
    var submitter = event.submitter;
    if (submitter && submitter.name === "action" && submitter.value === "send") {
      up.sendWanted = submitter;
      up.sendWaiting.textContent = up.sendWaiting.getAttribute("data-waiting");
    }
  }

  function online() {
    entries.forEach(function (entry) {
      if (entry.retry && entry.timer) {
        entry.delay = 0;
        retryNow(entry);
      }
    });
  }

  function swapped(event) {
    var target = event.detail && event.detail.target;
    if (!target) { return; }
    if (target.id === "kept-attachments") {
      // A file was removed there (htmx): the room left grew, and the texts that name it too.
      keptChanged();
      if (up) { changed(); }
    } else {
      init();
    }
  }

  function leaving(event) {
    var detail = event.detail || {};
    if (up && detail.shouldSwap !== false && detail.target && detail.target.id === "main") {
      stopAll();
      up = null;
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
  document.addEventListener("submit", submitting, true);
  document.addEventListener("htmx:beforeSwap", leaving);
  document.addEventListener("htmx:afterSettle", swapped);
  window.addEventListener("online", online);
})();
