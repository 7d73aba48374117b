// Unit tests of lead-capture.js's queue, retry, persistence and prompt logic, with a fake browser.
// Run: node --test Tests/web
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { createLeadCapture } = require("../../Services/Ingest/Web/lead-capture.js");

function fakeEnv(responses, storage = new Map()) {
  const env = {
    requests: [], timers: [], beacons: [], warnings: [], clock: 1_800_000_000_000, ids: 0,
    storage: { getItem: (k) => (storage.has(k) ? storage.get(k) : null), setItem: (k, v) => storage.set(k, v) },
    fetch: (url, init = {}) => {
      env.requests.push({ url, init, body: init.body ? JSON.parse(init.body) : null });
      const next = responses.shift();
      if (!next) return Promise.reject(new Error("no scripted response"));
      if (next instanceof Error) return Promise.reject(next);
      return Promise.resolve({ status: next.status, json: () => Promise.resolve(typeof next.body === "function" ? next.body(env) : next.body) });
    },
    now: () => env.clock, random: () => 0.5,
    uuid: () => `00000000-0000-4000-8000-${String(++env.ids).padStart(12, "0")}`,
    setTimeout: (fn, delay) => { env.timers.push({ fn, delay }); return env.timers.length; },
    clearTimeout: () => {},
    warn: (m) => env.warnings.push(m),
    sendBeacon: (url, body) => { env.beacons.push({ url, body: JSON.parse(body) }); return true; },
    page: () => "/demo", hidden: () => false, document: null,
  };
  env.backing = storage;
  return env;
}
const accepted = (env) => {
  const events = env.requests.at(-1).body.events;
  return { accepted: events.length, rejected: 0, results: events.map((e, index) => ({ index, event_id: e.event_id, status: "accepted" })),
           session_tokens: { [events[0].session_id]: "tok" } };
};

test("events are queued, persisted and sent as one batch", async () => {
  const env = fakeEnv([{ status: 202, body: accepted }]);
  const lc = createLeadCapture({ endpoint: "https://in.example", key: "pk-1" }, env);
  lc.track("page_view", {});
  lc.track("face_analysis", { recommendations: [] });
  assert.equal(JSON.parse(env.backing.get("lc_queue")).length, 2, "persisted before sending");
  assert.equal(await lc.flush(), "sent");
  assert.equal(env.requests.length, 1);
  assert.match(env.requests[0].url, /^https:\/\/in\.example\/v1\/interactions\/batch\?key=pk-1$/);
  const events = env.requests[0].body.events;
  assert.deepEqual(events.map((e) => e.type), ["page_view", "face_analysis"]);
  assert.equal(events[0].session_id, events[1].session_id, "one session");
  assert.equal(events[0].source_page, "/demo");
  assert.equal(lc.pending(), 0);
  assert.equal(JSON.parse(env.backing.get("lc_token")), "tok", "the session token is kept for prompt lookups");
});

test("503 and network errors keep the events and retry with growing, bounded backoff", async () => {
  const env = fakeEnv([{ status: 503, body: {} }, new Error("offline"), { status: 503, body: {} }, { status: 202, body: accepted }]);
  const lc = createLeadCapture({ maxBackoffMs: 3000 }, env);
  lc.track("search", {});
  env.timers.length = 0;
  const delays = [];
  for (let i = 0; i < 3; i++) {
    assert.equal(await lc.flush(), "retry");
    assert.equal(lc.pending(), 1, "nothing lost");
    delays.push(env.timers.at(-1).delay);
    env.timers.length = 0;
  }
  assert.ok(delays[0] < delays[1], `backoff grows: ${delays}`);
  assert.ok(delays.every((d) => d <= 3000), `bounded: ${delays}`);
  assert.equal(await lc.flush(), "sent");
  assert.equal(lc.pending(), 0);
  const ids = new Set(env.requests.map((r) => r.body.events[0].event_id));
  assert.equal(ids.size, 1, "every retry sends the same event_id (processed once)");
});

test("a reload finds the unsent queue and sends it", async () => {
  const storage = new Map();
  const first = createLeadCapture({}, fakeEnv([], storage));
  first.track("cost_calculator", { get_quote: true });
  const env = fakeEnv([{ status: 202, body: accepted }], storage);
  const second = createLeadCapture({}, env);
  assert.equal(second.pending(), 1);
  assert.equal(env.timers.length, 1, "a flush is scheduled at start");
  await second.flush();
  assert.equal(env.requests[0].body.events[0].type, "cost_calculator");
  assert.equal(second.sessionId(), first.sessionId(), "the same visitor");
});

test("the queue is bounded by size and age", () => {
  const env = fakeEnv([]);
  const lc = createLeadCapture({ maxQueue: 3, maxAgeMs: 1000 }, env);
  for (let i = 0; i < 5; i++) lc.track("page_view", { i });
  assert.equal(lc.pending(), 3);
  assert.equal(lc.stats().dropped, 2);
  env.clock += 2000;
  lc.track("search", {});
  assert.equal(lc.pending(), 1, "older than maxAge: dropped");
});

test("a refused key stops tracking with a warning", async () => {
  const env = fakeEnv([{ status: 401, body: {} }]);
  const lc = createLeadCapture({}, env);
  lc.track("page_view", {});
  assert.equal(await lc.flush(), "refused");
  assert.equal(env.warnings.length, 1);
  assert.equal(await lc.flush(), undefined);
  assert.equal(env.requests.length, 1);
});

test("prompt: polled with the session token, called back once per prompt, stops after identify", async () => {
  const decision = { prompt: true, prompt_id: "p-1", fields: ["phone", "email"], variant: "B" };
  const env = fakeEnv([{ status: 202, body: accepted }, { status: 200, body: decision }, { status: 200, body: decision }, { status: 202, body: accepted }]);
  const lc = createLeadCapture({ endpoint: "https://in.example", key: "pk-1" }, env);
  const seen = [];
  lc.track("face_analysis", {});
  await lc.flush();
  lc.onPrompt((p) => seen.push(p));
  await lc.pollPrompt();
  await lc.pollPrompt();
  assert.deepEqual(seen, [{ promptId: "p-1", fields: ["phone", "email"], variant: "B" }]);
  const lookup = env.requests[1].url;
  assert.match(lookup, /\/v1\/sessions\/s-[^/]+\/prompt\?token=tok&key=pk-1$/);
  lc.identify({ name: "Asha", email: "asha@example.com" }, "ai_recommendation", { procedure: "Botox" });
  await Promise.resolve();
  const before = env.requests.length;
  await lc.pollPrompt();
  assert.equal(env.requests.length, before, "no polling once the contact is known");
  const identified = env.requests.at(-1).body.events.at(-1);
  assert.equal(identified.type, "ai_recommendation");
  assert.equal(identified.contact.email, "asha@example.com");
});

test("page hide sends a beacon and keeps the events until a flush confirms them", () => {
  const env = fakeEnv([]);
  const lc = createLeadCapture({ endpoint: "https://in.example", key: "pk-1" }, env);
  lc.track("package_inquiry", { package: "Glow" });
  assert.equal(lc.beacon(), true);
  assert.equal(env.beacons[0].body.events[0].type, "package_inquiry");
  assert.match(env.beacons[0].url, /key=pk-1/);
  assert.equal(lc.pending(), 1);
});
