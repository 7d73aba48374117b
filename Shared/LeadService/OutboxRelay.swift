import AMQP
import Foundation
import LeadStore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Publishes the transactional outbox with confirms. Woken right after a local commit by a worker that does
/// not dispatch its own rows (since migration 023 the scorer, lead-alerts and lead-conversion all do, through
/// `OutboxDispatcher`), and polling for rows other processes left behind (a crash between commit and publish)
/// and for leased rows whose lease ended (a worker that dispatched them and could not). A message is deleted only
/// after the broker confirmed it, so it is published at least once, always under its stored `message_id`.
///
/// Rounds are pipelined over `stores` (one database connection each): a round claims rows
/// (`FOR UPDATE SKIP LOCKED`), hands them to the broker connection in id order, and keeps its transaction
/// open until their confirms are in, then deletes them; the next round claims the rows committed since as
/// soon as the previous round's messages are handed over, not after its confirms. The broker gets the
/// messages in claim order, so messages keep their commit order unless a publish fails and is retried.
package struct OutboxRelay: Service, CustomStringConvertible {
    let stores: [OutboxStore]
    let connection: AMQPConnection
    let signal: WakeSignal
    let gate: StartGate
    let batchSize: Int
    let pollInterval: Duration
    let logger: Logger
    private let published = Counter(label: "outbox_messages_published_total")
    private let failures = Counter(label: "outbox_publish_failures_total")
    private let roundDuration = Timer(label: "outbox_relay_round_seconds")

    /// `rounds`: how many rounds may await their confirms at once; each has a database connection of its own.
    package init(
        database: DatabaseConfiguration,
        rounds: Int = 3,
        connection: AMQPConnection,
        signal: WakeSignal,
        gate: StartGate,
        batchSize: Int = 500,
        pollInterval: Duration = .milliseconds(500),
        logger: Logger
    ) {
        self.stores = (0..<max(1, rounds)).map { _ in
            OutboxStore(connection: DedicatedConnection(configuration: database, timeout: .seconds(10), logger: logger))
        }
        self.connection = connection
        self.signal = signal
        self.gate = gate
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.logger = logger
    }

    package var description: String { "OutboxRelay" }

    package func run() async throws {
        guard await gate.wait() else { return }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Int.self) { rounds in
                var idle = Array(stores.indices)
                var failuresInARow = 0
                while !Task.isShuttingDownGracefully, !Task.isCancelled {
                    if idle.isEmpty, let lane = await rounds.next() { idle.append(lane) }
                    let lane = idle.removeLast()
                    let handoff = Handoff()
                    rounds.addTask {
                        await round(on: stores[lane], handoff: handoff)
                        return lane
                    }
                    switch await handoff.value {
                    case .success(let claimed):
                        failuresInARow = 0
                        if claimed == batchSize { continue }  // more may be waiting
                    case .failure(let error):
                        failuresInARow += 1
                        if failuresInARow == 1 || failuresInARow % 20 == 0 {
                            logger.warning("outbox relay failed; retrying", metadata: ["error": "\(String(reflecting: error))"])
                        }
                    }
                    await signal.wait(upTo: failuresInARow > 0 ? .seconds(1) : pollInterval)
                }
                await rounds.waitForAll()
            }
            // Last pass so messages committed just before the shutdown go out now.
            _ = try? await relayOnce()
            for store in stores { await store.close() }
        } onGracefulShutdown: {
            signal.notify()
        }
    }

    /// One round on one connection: claims, hands the messages over (then resumes `handoff` with how many
    /// were claimed), waits for their confirms and deletes the confirmed ones. `handoff` gets the error
    /// when the round fails before the handover; a failure after it leaves the rows to a later round.
    private func round(on store: OutboxStore, handoff: Handoff) async {
        let started = ContinuousClock.now
        do {
            let count = try await withDeadline(.seconds(30)) {
                // A lease request made while the database was down can stay queued after it is back;
                // the deadline turns that into a retry instead of a relay that never moves again.
                try await relay(on: store) { claimed in handoff.resume(.success(claimed)) }
            }
            handoff.resume(.success(count))
            if count > 0 { roundDuration.record(duration: ContinuousClock.now - started) }
        } catch {
            failures.increment()
            // Before the handover the loop reports it (rate-limited); after it, the round's messages went out
            // but their rows stay, to be published again under the same message ids.
            if !handoff.resume(.failure(error)) {
                logger.warning(
                    "outbox round failed after publishing; its rows stay and go out again under the same message ids",
                    metadata: ["error": "\(String(reflecting: error))"]
                )
            }
        }
    }

    /// Publishes one batch on the first store, start to end; returns how many were claimed and published.
    func relayOnce() async throws -> Int {
        try await relay(on: stores[0]) { _ in }
    }

    private func relay(on store: OutboxStore, handedOver: @escaping @Sendable (Int) -> Void) async throws -> Int {
        guard connection.isConnected else { throw AMQPError(.notConnected, "broker unavailable") }
        let connection = self.connection
        let logger = self.logger
        let count = try await store.relay(limit: batchSize, logger: logger) { messages in
            logger.debug("outbox relay publishing", metadata: ["messages": "\(messages.count)"])
            let batch = connection.publishInOrder(messages.map(\.outgoing))
            handedOver(messages.count)
            let results = await batch.confirmations()
            let confirmed = zip(messages, results).compactMap { message, error in error == nil ? message.id : nil }
            logger.debug("outbox relay confirmed", metadata: ["confirmed": "\(confirmed.count)", "claimed": "\(messages.count)"])
            return confirmed
        }
        published.increment(by: count)
        return count
    }
}

/// A round's first answer to the relay loop, given once: how many rows it claimed, or why it failed.
private final class Handoff: Sendable {
    private struct State {
        var value: Result<Int, any Error>?
        var waiter: CheckedContinuation<Result<Int, any Error>, Never>?
    }

    private let state = Mutex(State())

    /// Returns false when the answer had already been given (this one is dropped).
    @discardableResult
    func resume(_ value: Result<Int, any Error>) -> Bool {
        let (first, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Result<Int, any Error>, Never>?) in
            guard state.value == nil else { return (false, nil) }
            state.value = value
            return (true, state.waiter.take())
        }
        waiter?.resume(returning: value)
        return first
    }

    var value: Result<Int, any Error> {
        get async {
            await withCheckedContinuation { continuation in
                let value = state.withLock { state -> Result<Int, any Error>? in
                    if let value = state.value { return value }
                    state.waiter = continuation
                    return nil
                }
                if let value { continuation.resume(returning: value) }
            }
        }
    }
}

/// Wakes a waiting loop early; a notification with nobody waiting is kept for the next wait.
package final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation = 0
    }

    private let state = Mutex(State())

    package init() {}

    package func notify() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter.take() { return waiter }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns on a notification or after `timeout`, whichever comes first.
    package func wait(upTo timeout: Duration) async {
        let generation: Int? = state.withLock { state in
            if state.pending {
                state.pending = false
                return nil
            }
            state.generation += 1
            return state.generation
        }
        guard let generation else { return }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.fire(generation: generation)
        }
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.pending || state.generation != generation {
                    state.pending = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
        timer.cancel()
    }

    private func fire(generation: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.generation == generation else { return nil }
            state.generation += 1
            return state.waiter.take()
        }
        waiter?.resume()
    }
}
