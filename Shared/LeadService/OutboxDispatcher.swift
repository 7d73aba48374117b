import AMQP
import Foundation
import LeadCore
import LeadStore
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Publishes outbox rows as soon as the transaction that wrote them has committed, so a message does not wait
/// for the relay to wake up, open a transaction and claim it again (on a busy machine each of those waits for
/// a CPU). The rows were written leased to this worker (`outbox.leased_until`, `OutboxStore.lease` from the
/// transaction's start), so relays leave them alone meanwhile. Confirmed rows are deleted, many dispatches in one statement.
///
/// Nothing is lost and no message changes its id: a message the broker does not confirm, a row that cannot be
/// deleted, or a crash leaves the row, and a relay publishes it under the same `message_id` once the lease has
/// ended. Messages dispatched while the broker is unreachable, or while `maxUnconfirmed` are awaiting their
/// confirms, are not handed over at all and go the same way.
package final class OutboxDispatcher: Service, CustomStringConvertible, Sendable {
    private struct Dispatched: Sendable {
        var ids: [Int64]
        var batch: PublishBatch
    }

    private struct State {
        var queue: [Dispatched] = []
        var unconfirmed = 0
    }

    private let connection: AMQPConnection
    private let client: PostgresClient
    private let logger: Logger
    private let maxUnconfirmed: Int
    private let state = Mutex(State())
    private let signal = WakeSignal()
    private let published = Counter(label: "outbox_messages_dispatched_total")
    private let leftToRelay = Counter(label: "outbox_messages_left_to_relay_total")

    package init(connection: AMQPConnection, client: PostgresClient, maxUnconfirmed: Int = 10_000, logger: Logger) {
        self.connection = connection
        self.client = client
        self.maxUnconfirmed = maxUnconfirmed
        self.logger = logger
    }

    package var description: String { "OutboxDispatcher" }

    /// Hands `messages` (committed, leased outbox rows) to the broker in this order, after those dispatched
    /// before. Returns false when they were left to the relay instead (broker unavailable, or too many awaiting
    /// confirms).
    @discardableResult
    package func dispatch(_ messages: [OutboxMessage]) -> Bool {
        guard !messages.isEmpty else { return true }
        let outgoing = messages.map(\.outgoing)
        // Handed over under the lock, so dispatches reach the broker in the order they are queued here.
        let admitted = state.withLock { state -> Bool in
            guard connection.isConnected, !connection.isBlocked, state.unconfirmed + messages.count <= maxUnconfirmed else { return false }
            state.unconfirmed += messages.count
            state.queue.append(Dispatched(ids: messages.map(\.id), batch: connection.publishInOrder(outgoing)))
            return true
        }
        guard admitted else {
            leftToRelay.increment(by: messages.count)
            return false
        }
        signal.notify()
        return true
    }

    /// Deletes the rows of confirmed messages until the service stops; then finishes what was dispatched.
    package func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                if await settle() == 0 { await signal.wait(upTo: .seconds(1)) }
            }
        } onGracefulShutdown: {
            self.signal.notify()
        }
        // The consumer has stopped (services stop in reverse order): nothing more is dispatched.
        _ = try? await withDeadline(.seconds(10)) { await self.settle() }
    }

    /// Waits for the confirms of everything dispatched so far and deletes the confirmed rows in one statement;
    /// returns how many dispatches it settled.
    private func settle() async -> Int {
        let taken = state.withLock { state in
            defer { state.queue.removeAll(keepingCapacity: true) }
            return state.queue
        }
        guard !taken.isEmpty else { return 0 }
        var confirmed: [Int64] = []
        var count = 0
        for dispatched in taken {
            let results = await dispatched.batch.confirmations()
            count += dispatched.ids.count
            for (id, error) in zip(dispatched.ids, results) where error == nil { confirmed.append(id) }
        }
        state.withLock { $0.unconfirmed -= count }
        published.increment(by: confirmed.count)
        if confirmed.count < count { leftToRelay.increment(by: count - confirmed.count) }
        do {
            // Bounded for the same reason as the refresher's read: a stuck pool query must not stop settling.
            try await withAbandonableDeadline(.seconds(10)) { [client, logger, confirmed] in
                try await OutboxStore.delete(confirmed, client: client, logger: logger)
            }
        } catch {
            logger.warning(
                "cannot delete published outbox rows; the relay publishes them again, same message ids, when their lease ends",
                metadata: ["rows": "\(confirmed.count)", "error": "\(String(reflecting: error))"]
            )
        }
        return taken.count
    }
}

extension OutboxMessage {
    /// The message as published: its stored body and `message_id`.
    package var outgoing: OutgoingMessage {
        OutgoingMessage(exchange: exchange, routingKey: routingKey, body: Data(body.utf8), messageID: messageID.lowercasedString)
    }
}
