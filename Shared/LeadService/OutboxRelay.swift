import AMQP
import Foundation
import LeadStore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Publishes the transactional outbox with confirms. Woken right after a local commit, and polling
/// for rows other processes left behind (a crash between commit and publish). A message is deleted only
/// after the broker confirmed it, so it is published at least once, always under its stored `message_id`.
package struct OutboxRelay: Service, CustomStringConvertible {
    let store: OutboxStore
    let connection: AMQPConnection
    let signal: WakeSignal
    let gate: StartGate
    let batchSize: Int
    let pollInterval: Duration
    let logger: Logger
    private let published = Counter(label: "outbox_messages_published_total")
    private let failures = Counter(label: "outbox_publish_failures_total")

    package init(
        store: OutboxStore,
        connection: AMQPConnection,
        signal: WakeSignal,
        gate: StartGate,
        batchSize: Int = 500,
        pollInterval: Duration = .milliseconds(500),
        logger: Logger
    ) {
        self.store = store
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
            var failuresInARow = 0
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                do {
                    var count = batchSize
                    while count == batchSize, !Task.isShuttingDownGracefully {
                        // A lease request made while the database was down can stay queued after it is back;
                        // a deadline turns that into a retry instead of a relay that never moves again.
                        count = try await withDeadline(.seconds(30)) { try await relayOnce() }
                    }
                    failuresInARow = 0
                } catch {
                    failuresInARow += 1
                    if failuresInARow == 1 || failuresInARow % 20 == 0 {
                        logger.warning("outbox relay failed; retrying", metadata: ["error": "\(String(reflecting: error))"])
                    }
                }
                await signal.wait(upTo: failuresInARow > 0 ? .seconds(1) : pollInterval)
            }
            // Last pass so messages committed just before the shutdown go out now.
            _ = try? await relayOnce()
            await store.close()
        } onGracefulShutdown: {
            signal.notify()
        }
    }

    /// Publishes one batch; returns how many were claimed and published.
    func relayOnce() async throws -> Int {
        guard connection.isConnected else { throw AMQPError(.notConnected, "broker unavailable") }
        let connection = self.connection
        let logger = self.logger
        let count = try await store.relay(limit: batchSize, logger: logger) { messages in
            logger.debug("outbox relay publishing", metadata: ["messages": "\(messages.count)"])
            return await withTaskGroup(of: Int64?.self) { group in
                for message in messages {
                    group.addTask {
                        let outgoing = OutgoingMessage(
                            exchange: message.exchange,
                            routingKey: message.routingKey,
                            body: Data(message.body.utf8),
                            messageID: message.messageID.uuidString.lowercased()
                        )
                        do {
                            try await connection.publish(outgoing)
                            return message.id
                        } catch {
                            return nil
                        }
                    }
                }
                var confirmed: [Int64] = []
                for await id in group { if let id { confirmed.append(id) } }
                logger.debug("outbox relay confirmed", metadata: ["confirmed": "\(confirmed.count)", "claimed": "\(messages.count)"])
                return confirmed
            }
        }
        published.increment(by: count)
        return count
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
