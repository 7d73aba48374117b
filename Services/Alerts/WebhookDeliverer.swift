import AsyncHTTPClient
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Delivers pending webhooks: one loop per endpoint, so a slow or dead endpoint never delays another. State
/// lives in `webhook_deliveries` (a restart resumes where it stopped); every attempt is recorded; retries back
/// off exponentially with jitter until `giveUpAfter`; 410 Gone disables the endpoint.
///
/// New alerts' deliveries come straight from the alert handler (`DeliveryInbox`, leased to this process when
/// they were written), so no claim query stands between an alert's commit and its POST. Each endpoint keeps up
/// to `concurrency` requests in flight; it claims due deliveries from the database (retries, and what a
/// restart or an overfull inbox left) every second, and again as long as claims come back full.
/// Finished attempts are recorded in batches (one transaction for all that ended together). A request's slot
/// is freed when its answer is in, not when it is recorded: holding it through the recording made the
/// database's latency the endpoint's pace (at 250 alerts/s with 16 slots, HTTP ~10 ms, deliveries fell
/// behind by up to 1.7 s while recording waited on a busy database). Attempts awaiting their record are
/// bounded too (`concurrency` × 8); a delivery's lease (one request plus 10 s) covers its recording.
struct WebhookDeliverer: Service, CustomStringConvertible {
    let urls: [String]
    let signer: WebhookSigner
    let schedule: RetrySchedule
    let client: PostgresClient
    let inbox: DeliveryInbox
    let gate: StartGate
    let logger: Logger
    /// Deliveries in flight per endpoint.
    var concurrency = 16
    var requestTimeout: TimeAmount = .seconds(10)

    /// How long a claimed delivery stays leased: one attempt (the request timeout) plus recording it, with room.
    private var lease: Duration { Self.lease(requestTimeout: requestTimeout) }

    /// The lease of a claimed delivery; a new one is leased for this plus `DeliveryInbox.maxAge` when written.
    static func lease(requestTimeout: TimeAmount) -> Duration { .nanoseconds(requestTimeout.nanoseconds) + .seconds(10) }

    var description: String { "WebhookDeliverer(\(urls.count) endpoints)" }

    func run() async throws {
        guard await gate.wait() else { return }
        let recorder = AttemptRecorder(client: client, logger: logger)
        // A client of its own: the shared one opens at most 8 connections per host, fewer than `concurrency`.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
        configuration.redirectConfiguration = .disallow
        // A refused connection fails its attempt at once (an unanswered one after 5 s), and the delivery's own
        // recorded retry schedule takes over. With AsyncHTTPClient's retries of connection establishment on, an
        // attempt on a dead endpoint lasted the whole request timeout: one attempt every ~12 s, whatever the
        // schedule said (0.2 s in the tests), each holding one of the endpoint's slots for 10 s.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await recorder.run() }
            await withTaskGroup(of: Void.self) { endpoints in
                for url in urls {
                    endpoints.addTask { await endpointLoop(url: url, wakeup: inbox.wakeup(for: url), recorder: recorder, http: http) }
                }
                try? await gracefulShutdown()
                for url in urls { inbox.wakeup(for: url).notify() }
                await endpoints.waitForAll()
            }
            // Every attempt has been recorded by now (each waited for its record); the recorder may stop.
            recorder.finish()
            await group.waitForAll()
        }
        try? await http.shutdown()
    }

    private enum LoopEvent: Sendable {
        /// The endpoint answered (or not); the attempt is to be recorded.
        case answered(AlertStore.Attempt)
        case recorded
        case woken
    }

    private func endpointLoop(url: String, wakeup: WakeSignal, recorder: AttemptRecorder, http: HTTPClient) async {
        let logger = {
            var logger = self.logger
            logger[metadataKey: "webhook.url"] = "\(redacted(url))"
            return logger
        }()
        let delivered = Counter(label: "webhook_deliveries_total", dimensions: [("result", "delivered")])
        let failed = Counter(label: "webhook_deliveries_total", dimensions: [("result", "failed_attempt")])
        await withTaskGroup(of: LoopEvent.self) { group in
            var inFlight = 0
            var recording = 0
            let maxRecording = concurrency * 8
            var waiting = false
            var mayHaveDue = true
            var lastClaim = ContinuousClock.now - .seconds(1)
            var failuresInARow = 0
            func addWaiter() {
                waiting = true
                group.addTask {
                    await wakeup.wait(upTo: .seconds(1))
                    return .woken
                }
            }
            func start(_ delivery: AlertStore.Delivery) {
                inFlight += 1
                group.addTask { .answered(await attempt(delivery, http: http, logger: logger)) }
            }
            addWaiter()
            while let event = await group.next() {
                // Claims from the database are made in chunks: after a completion only once half the slots are
                // free (one claim query per delivery cost more than the delivery), and at least once a second.
                var claimNow = false
                switch event {
                case .answered(let attempt):
                    inFlight -= 1
                    if case .delivered = attempt.outcome { delivered.increment() } else { failed.increment() }
                    // A failure to record is logged by the recorder; the lease then expires and the delivery is
                    // attempted again: at least once, never silently dropped.
                    recording += 1
                    group.addTask {
                        await recorder.record(attempt)
                        return .recorded
                    }
                    claimNow = inFlight <= concurrency / 2
                case .recorded:
                    recording -= 1
                    claimNow = inFlight <= concurrency / 2
                case .woken:
                    // New alerts in the inbox, or the poll's second.
                    waiting = false
                    if ContinuousClock.now - lastClaim >= .seconds(1) {
                        mayHaveDue = true
                        claimNow = true
                    }
                }
                if Task.isShuttingDownGracefully || Task.isCancelled {
                    // No new claims; the attempts in flight finish and are recorded (or fail at once, if cancelled).
                    if inFlight == 0 && recording == 0 && !waiting { break }
                    continue
                }
                if !waiting { addWaiter() }
                guard inFlight < concurrency, recording < maxRecording else { continue }
                for delivery in inbox.take(url: url, max: concurrency - inFlight) { start(delivery) }
                guard claimNow, mayHaveDue, inFlight < concurrency else { continue }
                let limit = concurrency - inFlight
                do {
                    // After a crash, the delivery is retried when its lease ends.
                    let due = try await AlertStore.claimDue(url: url, limit: limit, lease: lease, client: client, logger: logger)
                    lastClaim = ContinuousClock.now
                    failuresInARow = 0
                    for delivery in due { start(delivery) }
                    // A short claim means nothing else is due now: wait for the next second's poll.
                    mayHaveDue = due.count == limit
                } catch {
                    lastClaim = ContinuousClock.now
                    failuresInARow += 1
                    if failuresInARow == 1 || failuresInARow % 30 == 0 {
                        logger.warning("webhook loop failed; retrying", metadata: ["error": "\(String(reflecting: error))"])
                    }
                    mayHaveDue = false
                }
            }
        }
    }

    /// One POST; returns the attempt to record, whatever happened.
    private func attempt(_ delivery: AlertStore.Delivery, http: HTTPClient, logger: Logger) async -> AlertStore.Attempt {
        let body = Data(delivery.payload.utf8)
        let webhookID = delivery.alertID.lowercasedString
        let timestamp = Int(Date().timeIntervalSince1970)
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "webhook-id", value: webhookID)
        request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
        request.headers.add(name: "webhook-signature", value: signer.signature(id: webhookID, timestamp: timestamp, body: body))
        request.body = .bytes(ByteBuffer(bytes: body))
        let started = ContinuousClock.now
        var statusCode: Int?
        var errorText: String?
        do {
            let response = try await http.execute(request, timeout: requestTimeout)
            statusCode = Int(response.status.code)
            _ = try? await response.body.collect(upTo: 64 * 1024)
        } catch {
            errorText = "\(error)"
        }
        let latency = ContinuousClock.now - started
        let outcome: AlertStore.AttemptOutcome
        if let statusCode, (200..<300).contains(statusCode) {
            outcome = .delivered
        } else if statusCode == 410 {
            outcome = .gone
            logger.warning("webhook endpoint answered 410 Gone; disabling it")
        } else {
            var generator = SystemRandomNumberGenerator()
            let delay = schedule.delay(afterAttempt: delivery.attempts + 1, using: &generator)
            let next = Date().addingTimeInterval(Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
            let giveUp = next.timeIntervalSince(delivery.retrySince) > Double(schedule.giveUpAfter.components.seconds)
            outcome = .retry(next: next, giveUp: giveUp)
            logger.warning(
                giveUp ? "webhook failed; giving up" : "webhook failed; will retry",
                metadata: [
                    "webhook.id": "\(webhookID)", "attempt": "\(delivery.attempts + 1)", "status": "\(statusCode.map(String.init) ?? "-")",
                    "error": "\(errorText ?? "-")", "retry.in": "\(giveUp ? "never" : "\(delay)")",
                ]
            )
        }
        if case .delivered = outcome {
            logger.info("webhook delivered", metadata: ["webhook.id": "\(webhookID)", "attempt": "\(delivery.attempts + 1)"])
        }
        return AlertStore.Attempt(delivery: delivery, statusCode: statusCode, latency: latency, error: errorText, outcome: outcome)
    }

    /// The URL without credentials or query string, for logs.
    private func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(invalid url)" }
        components.user = nil
        components.password = nil
        components.query = nil
        return components.string ?? "(invalid url)"
    }
}

/// Records finished attempts in batches: whatever ended while the previous batch was being written goes into
/// the next transaction. `record` returns once its attempt is written (or the write failed and was logged).
final class AttemptRecorder: Sendable {
    private struct State {
        var pending: [(AlertStore.Attempt, CheckedContinuation<Void, Never>)] = []
        var finished = false
        /// `run` has returned: nothing more is written (a cancelled service); `record` returns at once.
        var stopped = false
    }

    private let state = Mutex(State())
    private let signal = WakeSignal()
    private let client: PostgresClient
    private let logger: Logger
    private let batches = Recorder(label: "webhook_attempts_recorded_per_batch")

    init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    func record(_ attempt: AlertStore.Attempt) async {
        await withCheckedContinuation { continuation in
            let stopped = state.withLock { state in
                if !state.stopped { state.pending.append((attempt, continuation)) }
                return state.stopped
            }
            if stopped { continuation.resume() } else { signal.notify() }
        }
    }

    /// Stops `run` once everything recorded so far is written.
    func finish() {
        state.withLock { $0.finished = true }
        signal.notify()
    }

    func run() async {
        while true {
            let (batch, finished) = state.withLock { state in
                defer { state.pending.removeAll(keepingCapacity: true) }
                return (state.pending, state.finished)
            }
            if !batch.isEmpty {
                do {
                    try await AlertStore.recordAttempts(batch.map(\.0), client: client, logger: logger)
                    batches.record(batch.count)
                } catch {
                    logger.warning(
                        "cannot record webhook attempts; their deliveries are retried when the lease ends",
                        metadata: ["attempts": "\(batch.count)", "error": "\(String(reflecting: error))"]
                    )
                }
                for (_, continuation) in batch { continuation.resume() }
                continue
            }
            if finished || Task.isCancelled {
                // Unwritten attempts are retried when their lease ends.
                let left = state.withLock { state in
                    state.stopped = true
                    defer { state.pending.removeAll() }
                    return state.pending
                }
                for (_, continuation) in left { continuation.resume() }
                return
            }
            await signal.wait(upTo: .seconds(1))
        }
    }
}

/// Deliveries of alerts just committed, leased to this process when they were written, handed by the alert
/// handler straight to their endpoint's loop. Bounded per endpoint (`capacity`); a delivery that does not fit,
/// or that has waited here longer than `maxAge` (a slow endpoint), is dropped from memory only: its row stays
/// pending, and the endpoint's database poll claims it once its lease has ended.
final class DeliveryInbox: Sendable {
    /// How long a delivery may wait here; its lease at insert covers this plus one claimed attempt.
    static let maxAge: Duration = .seconds(5)

    private struct Entry {
        var delivery: AlertStore.Delivery
        var posted: ContinuousClock.Instant
    }

    private let queues: Mutex<[String: [Entry]]>
    private let wakeups: [String: WakeSignal]
    private let capacity: Int
    private let leftToPoll = Counter(label: "webhook_deliveries_left_to_poll_total")

    init(urls: [String], capacity: Int) {
        queues = Mutex(Dictionary(urls.map { ($0, []) }, uniquingKeysWith: { first, _ in first }))
        wakeups = Dictionary(urls.map { ($0, WakeSignal()) }, uniquingKeysWith: { first, _ in first })
        self.capacity = capacity
    }

    /// The signal that wakes `url`'s loop when deliveries for it arrive.
    func wakeup(for url: String) -> WakeSignal {
        wakeups[url] ?? WakeSignal()
    }

    func post(_ deliveries: [AlertStore.Delivery]) {
        guard !deliveries.isEmpty else { return }
        let now = ContinuousClock.now
        let (woken, dropped) = queues.withLock { queues -> (Set<String>, Int) in
            var woken = Set<String>()
            var dropped = 0
            for delivery in deliveries {
                guard let count = queues[delivery.url]?.count, count < capacity else {
                    dropped += 1
                    continue
                }
                queues[delivery.url]?.append(Entry(delivery: delivery, posted: now))
                woken.insert(delivery.url)
            }
            return (woken, dropped)
        }
        if dropped > 0 { leftToPoll.increment(by: dropped) }
        for url in woken { wakeups[url]?.notify() }
    }

    /// Up to `max` deliveries for `url`, oldest first; those older than `maxAge` are left to the poll.
    func take(url: String, max: Int) -> [AlertStore.Delivery] {
        guard max > 0 else { return [] }
        let oldest = ContinuousClock.now - Self.maxAge
        let (taken, stale) = queues.withLock { queues -> ([AlertStore.Delivery], Int) in
            guard let queue = queues[url], !queue.isEmpty else { return ([], 0) }
            let fresh = queue.drop { $0.posted < oldest }
            let stale = queue.count - fresh.count
            let taken = fresh.prefix(max)
            queues[url] = Array(fresh.dropFirst(taken.count))
            return (taken.map(\.delivery), stale)
        }
        if stale > 0 { leftToPoll.increment(by: stale) }
        return taken
    }
}
