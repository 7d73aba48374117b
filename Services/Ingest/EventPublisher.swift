import AMQP
import Foundation
import LeadCore
import LeadService
import Metrics
import Synchronization

/// Publishes validated events to `leads.interactions` over its broker connections (one by default, `INGEST_BROKER_CONNECTIONS`).
/// Each publish returns only when the broker confirmed it. When too many messages await confirmation the
/// caller waits briefly for room, then gets `AMQPError.Code.overloaded` (a 503, not unbounded memory).
/// A resource alarm on the broker (any connection told `connection.blocked`) fails publishes at once; a
/// confirm that does not come within the connection's `confirmTimeout` fails the request (503).
final class EventPublisher: Sendable {
    let connections: [AMQPConnection]
    /// How long a request may wait for room among the unconfirmed messages.
    let maxWaitForRoom: Duration
    private let next = Atomic<Int>(0)
    private let confirmed = Counter(label: "ingest_publish_total", dimensions: [("result", "confirmed")])
    private let failed = Counter(label: "ingest_publish_total", dimensions: [("result", "failed")])
    private let nacked = Counter(label: "ingest_publish_total", dimensions: [("result", "nacked")])

    init(connections: [AMQPConnection], maxWaitForRoom: Duration = .milliseconds(500)) {
        precondition(!connections.isEmpty)
        self.connections = connections
        self.maxWaitForRoom = maxWaitForRoom
    }

    /// The broker raised a memory or disk alarm: it blocks every publishing connection, so one told is enough.
    var isBlocked: Bool { connections.contains { $0.isBlocked } }

    var isConnected: Bool { connections.contains { $0.isConnected } }

    var unconfirmed: Int { connections.reduce(0) { $0 + $1.unconfirmedCount } }

    func publish(_ event: InteractionEvent) async throws {
        let message = OutgoingMessage(
            exchange: LeadTopology.interactionsExchange,
            routingKey: event.routingKey,
            body: event.encoded(),
            messageID: event.eventID.lowercasedString
        )
        let deadline = ContinuousClock.now.advanced(by: maxWaitForRoom)
        while true {
            if isBlocked {
                failed.increment()
                throw AMQPError(.blocked, "the broker has blocked publishing (resource alarm)")
            }
            let connection = pickConnection()
            do {
                try await connection.publish(message)
                confirmed.increment()
                return
            } catch let error as AMQPError where error.code == .overloaded && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(2))
            } catch let error as AMQPError {
                (error.code == .nacked ? nacked : failed).increment()
                throw error
            }
        }
    }

    /// Round robin over the connections that are up.
    private func pickConnection() -> AMQPConnection {
        let start = next.add(1, ordering: .relaxed).newValue
        for offset in 0..<connections.count {
            let connection = connections[(start + offset) % connections.count]
            if connection.isConnected { return connection }
        }
        return connections[start % connections.count]
    }
}
