/* lead-capture.js: CTAs as interaction events, queued, batched, retried; and when to ask for contact details.
   LeadCapture.init({endpoint, key}) then track(type, data), identify(contact, type, data), onPrompt(cb). */
(function (root) {
  "use strict";
  var QUEUE = "lc_queue", SESSION = "lc_session", TOKEN = "lc_token", CONTACT = "lc_contact", SHOWN = "lc_prompts";

  function createLeadCapture(options, env) {
    var o = Object.assign({
      endpoint: "", key: "", sessionStore: "localStorage", cookieDomain: "",
      batchSize: 50, flushDelay: 1000, maxQueue: 1000, maxAgeMs: 24 * 3600 * 1000,
      maxBackoffMs: 60000, promptIntervalMs: 3000
    }, options || {});
    var e = env;
    var queue = load(QUEUE, []);
    var attempt = 0, timer = null, inFlight = false, stopped = false;
    var listeners = [], shownPrompts = load(SHOWN, {}), promptTimer = null;
    var stats = { sent: 0, dropped: 0, retries: 0 };

    function load(name, fallback) {
      try { var v = e.storage.getItem(name); return v ? JSON.parse(v) : fallback; } catch (x) { return fallback; }
    }
    function save(name, value) {
      try { e.storage.setItem(name, JSON.stringify(value)); } catch (x) { /* memory only */ }
    }
    function cookie(name, value) {
      if (!e.document) return null;
      if (value === undefined) {
        var m = e.document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
        return m ? decodeURIComponent(m[1]) : null;
      }
      e.document.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=31536000; SameSite=Lax" +
        (o.cookieDomain ? "; domain=" + o.cookieDomain : "");
    }
    function sessionID() {
      var id = o.sessionStore === "cookie" ? cookie(SESSION) : load(SESSION, null);
      if (!id) {
        id = "s-" + e.uuid();
        if (o.sessionStore === "cookie") cookie(SESSION, id); else save(SESSION, id);
      }
      return id;
    }
    function url(path) {
      return o.endpoint.replace(/\/$/, "") + path + (path.indexOf("?") < 0 ? "?" : "&") + "key=" + encodeURIComponent(o.key);
    }
    function prune() {
      var now = e.now();
      var kept = queue.filter(function (item) { return now - item.queuedAt < o.maxAgeMs; });
      if (kept.length > o.maxQueue) kept = kept.slice(kept.length - o.maxQueue);
      stats.dropped += queue.length - kept.length;
      queue = kept;
    }
    function schedule(delay) {
      if (timer || stopped) return;
      timer = e.setTimeout(function () { timer = null; flush(); }, delay);
    }
    function backoff() {
      var base = Math.min(o.maxBackoffMs, 1000 * Math.pow(2, attempt));
      return base / 2 + e.random() * base / 2;
    }

    function enqueue(type, data, extra) {
      var event = Object.assign({
        event_id: e.uuid(), session_id: sessionID(), type: type, data: data || {},
        occurred_at: new Date(e.now()).toISOString(), source_page: e.page ? e.page().slice(0, 100) : undefined
      }, extra || {});
      queue.push({ event: event, queuedAt: e.now() });
      prune();
      save(QUEUE, queue);
      schedule(o.flushDelay);
      return event.event_id;
    }

    // 202: sent (invalid ones are not retried); 503/5xx/network: kept, retried with backoff; 401/403: stop.
    function flush() {
      if (inFlight || stopped || queue.length === 0) return Promise.resolve();
      if (timer) { e.clearTimeout(timer); timer = null; }
      inFlight = true;
      var batch = queue.slice(0, o.batchSize);
      var ids = batch.map(function (item) { return item.event.event_id; });
      return e.fetch(url("/v1/interactions/batch"), {
        method: "POST", headers: { "Content-Type": "application/json" }, keepalive: true,
        body: JSON.stringify({ events: batch.map(function (item) { return item.event; }) })
      }).then(function (response) {
        if (response.status === 202) {
          return response.json().then(function (body) {
            queue = queue.filter(function (item) { return ids.indexOf(item.event.event_id) < 0; });
            stats.sent += body.accepted || 0;
            var tokens = body.session_tokens || {};
            if (tokens[sessionID()]) save(TOKEN, tokens[sessionID()]);
            (body.results || []).forEach(function (r) {
              if (r.status === "rejected" && r.error && r.error.code === "unavailable") {
                queue.unshift(batch[r.index]);
              }
            });
            attempt = 0;
            return "sent";
          });
        }
        if (response.status === 401 || response.status === 403) {
          stopped = true;
          e.warn("lead-capture: the ingest refused key or origin (" + response.status + "); tracking stopped");
          return "refused";
        }
        if (response.status === 413 || response.status === 400 || response.status === 422) {
          queue = queue.filter(function (item) { return ids.indexOf(item.event.event_id) < 0; });
          stats.dropped += ids.length;
          return "invalid";
        }
        throw new Error("status " + response.status);
      }).catch(function () {
        attempt += 1;
        stats.retries += 1;
        return "retry";
      }).then(function (outcome) {
        inFlight = false;
        save(QUEUE, queue);
        if (outcome === "retry") schedule(backoff());
        else if (queue.length > 0) schedule(0);
        return outcome;
      });
    }

    // Page hide: a beacon (text/plain, no preflight). Events stay queued until a flush confirms them;
    // a repeat is harmless (one event_id is processed once).
    function beacon() {
      if (!e.sendBeacon || queue.length === 0 || stopped) return false;
      var events = queue.slice(0, o.batchSize).map(function (item) { return item.event; });
      return e.sendBeacon(url("/v1/interactions/batch"), JSON.stringify({ events: events }));
    }

    function pollPrompt() {
      promptTimer = null;
      if (listeners.length === 0 || load(CONTACT, false) || stopped) return Promise.resolve();
      var token = load(TOKEN, null);
      var next = function () { promptTimer = e.setTimeout(pollPrompt, o.promptIntervalMs); };
      if (!token || (e.hidden && e.hidden())) { next(); return Promise.resolve(); }
      return e.fetch(url("/v1/sessions/" + encodeURIComponent(sessionID()) + "/prompt?token=" + encodeURIComponent(token)))
        .then(function (response) { return response.status === 200 ? response.json() : null; })
        .then(function (decision) {
          if (decision && decision.prompt && decision.prompt_id && !shownPrompts[decision.prompt_id]) {
            shownPrompts[decision.prompt_id] = true;
            save(SHOWN, shownPrompts);
            listeners.forEach(function (callback) {
              callback({ promptId: decision.prompt_id, fields: decision.fields || [], variant: decision.variant });
            });
          }
        })
        .catch(function () {})
        .then(next);
    }

    var api = {
      track: function (type, data, extra) { return enqueue(type, data, extra); },
      identify: function (contact, type, data) {
        save(CONTACT, true);
        var id = enqueue(type || "registration", data, { contact: contact });
        flush();
        return id;
      },
      onPrompt: function (callback) {
        listeners.push(callback);
        if (!promptTimer) promptTimer = e.setTimeout(pollPrompt, 0);
      },
      dismissPrompt: function () { return enqueue("prompt_dismissed", {}); },
      flush: flush,
      beacon: beacon,
      pollPrompt: pollPrompt,
      sessionId: sessionID,
      pending: function () { return queue.length; },
      stats: function () { return Object.assign({ queued: queue.length }, stats); }
    };
    if (queue.length > 0) schedule(0);
    return api;
  }

  function browserEnv(w) {
    return {
      fetch: w.fetch.bind(w), storage: w.localStorage, document: w.document,
      now: function () { return Date.now(); }, random: Math.random,
      uuid: function () {
        if (w.crypto && w.crypto.randomUUID) return w.crypto.randomUUID();
        var b = w.crypto.getRandomValues(new Uint8Array(16));
        b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
        var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
        return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
      },
      setTimeout: w.setTimeout.bind(w), clearTimeout: w.clearTimeout.bind(w), warn: function (m) { w.console && w.console.warn(m); },
      sendBeacon: w.navigator && w.navigator.sendBeacon ? function (u, body) {
        return w.navigator.sendBeacon(u, new Blob([body], { type: "text/plain" }));
      } : null,
      page: function () { return w.location.pathname; },
      hidden: function () { return w.document.visibilityState === "hidden"; }
    };
  }

  var LeadCapture = {
    createLeadCapture: createLeadCapture,
    init: function (options) {
      var w = root;
      var instance = createLeadCapture(options, browserEnv(w));
      w.addEventListener("pagehide", instance.beacon);
      w.document.addEventListener("visibilitychange", function () {
        if (w.document.visibilityState === "hidden") instance.beacon();
      });
      return instance;
    }
  };
  if (typeof module !== "undefined" && module.exports) module.exports = LeadCapture;
  else root.LeadCapture = LeadCapture;
})(typeof window !== "undefined" ? window : globalThis);
