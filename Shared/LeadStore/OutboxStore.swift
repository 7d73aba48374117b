import Foundation
import Logging
import PostgresNIO

/// Messages waiting in the transactional outbox.
package struct OutboxMessage: Sendable, Equatable {
    package var id: Int64
    package var messageID: UUID
    package var exchange: String
    package var routingKey: String
    package var body: String

    package init(id: Int64, messageID: UUID, exchange: String, routingKey: String, body: String) {
        self.id = id
        self.messageID = messageID
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
    }

    /// From a `id, message_id, exchange, routing_key, body::text` row.
    init(row: PostgresRow) throws {
        let (id, messageID, exchange, routingKey, body) = try row.decode((Int64, UUID, String, String, String).self)
        self.init(id: id, messageID: messageID, exchange: exchange, routingKey: routingKey, body: body)
    }
}

/// Claims outbox rows (`FOR UPDATE SKIP LOCKED`, so several relays share the table), lets the caller
/// publish them, and deletes the ones it published, all in one transaction: a crash before the commit
/// leaves them to be published again under the same `message_id`. Rows leased to the worker that wrote them
/// (`leased_until`, see `OutboxDispatcher`) are left alone until the lease ends.
package struct OutboxStore: Sendable {
    /// How long rows written for direct dispatch (`OutboxDispatcher`) stay leased to the worker that wrote them.
    package static let lease: Duration = .seconds(15)
    /// `lease` in seconds, for SQL (`now() + make_interval(secs => ...)`).
    package static var leaseSeconds: Double { Double(lease.components.seconds) }

    let connection: DedicatedConnection

    package init(connection: DedicatedConnection) {
        self.connection = connection
    }

    /// Returns how many messages were published.
    package func relay(
        limit: Int,
        logger: Logger,
        publish: @escaping @Sendable ([OutboxMessage]) async -> [Int64]
    ) async throws -> Int {
        try await self.connection.withTransaction(logger: logger) { connection in
            var messages: [OutboxMessage] = []
            for try await message in try await connection.execute(ClaimOutbox(limit: limit), logger: logger) { messages.append(message) }
            guard !messages.isEmpty else { return 0 }
            let published = await publish(messages)
            if !published.isEmpty {
                for try await _ in try await connection.execute(DeleteOutbox(ids: published), logger: logger) {}
            }
            return published.count
        }
    }

    /// Decodes `id, message_id, exchange, routing_key, body::text` rows, in id order.
    package static func messages(_ rows: PostgresRowSequence) async throws -> [OutboxMessage] {
        var messages: [OutboxMessage] = []
        for try await row in rows { messages.append(try OutboxMessage(row: row)) }
        return messages.sorted { $0.id < $1.id }
    }

    /// Deletes rows whose messages the broker confirmed (published by `OutboxDispatcher`).
    package static func delete(_ ids: [Int64], client: PostgresClient, logger: Logger) async throws {
        guard !ids.isEmpty else { return }
        for try await _ in try await client.execute(DeleteOutbox(ids: ids), logger: logger) {}
    }

    package func close() async {
        await connection.close()
    }
}
