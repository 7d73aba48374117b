import Foundation
import Logging
import PostgresNIO

/// Messages waiting in the transactional outbox.
package struct OutboxMessage: Sendable {
    package var id: Int64
    package var messageID: UUID
    package var exchange: String
    package var routingKey: String
    package var body: String
}

/// Claims outbox rows (`FOR UPDATE SKIP LOCKED`, so several relays share the table), lets the caller
/// publish them, and deletes the ones it published, all in one transaction: a crash before the commit
/// leaves them to be published again under the same `message_id`.
package struct OutboxStore: Sendable {
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
            let rows = try await connection.query(
                """
                SELECT id, message_id, exchange, routing_key, body::text FROM outbox
                ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """,
                logger: logger
            )
            var messages: [OutboxMessage] = []
            for try await (id, messageID, exchange, routingKey, body) in rows.decode(
                (Int64, UUID, String, String, String).self
            ) {
                messages.append(
                    OutboxMessage(id: id, messageID: messageID, exchange: exchange, routingKey: routingKey, body: body)
                )
            }
            guard !messages.isEmpty else { return 0 }
            let published = await publish(messages)
            if !published.isEmpty {
                try await connection.query("DELETE FROM outbox WHERE id = ANY(\(published))", logger: logger)
            }
            return published.count
        }
    }

    package func close() async {
        await connection.close()
    }
}
