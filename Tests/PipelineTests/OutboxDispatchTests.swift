import AMQP
import Foundation
import LeadService
import LeadStore
import Logging
import PostgresNIO
import Synchronization
import Testing

/// Outbox rows written leased (019) and published by the worker that wrote them (`OutboxDispatcher`): relays
/// leave them alone while the lease lasts; a dispatched message arrives once, under its row's message id, and its
/// row is deleted; a message the broker cannot take stays, and a relay takes it once the lease has ended.
@Suite struct OutboxDispatchTests {
    /// Writes `count` leased rows, as lead-alerts and lead-conversion do, and returns them.
    func writeLeased(_ count: Int, routingKey: String) async throws -> [OutboxMessage] {
        let bodies = (0..<count).map { #"{"n":\#($0)}"# }
        return try await OutboxStore.messages(
            TestDatabase.client.query(
                """
                INSERT INTO outbox (exchange, routing_key, body, leased_until)
                SELECT \(LeadTopology.eventsExchange), \(routingKey), b::jsonb, now() + make_interval(secs => \(OutboxStore.leaseSeconds))
                FROM unnest(\(bodies)::text[]) WITH ORDINALITY AS x(b, n) ORDER BY n
                RETURNING id, message_id, exchange, routing_key, body::text
                """,
                logger: TestDatabase.logger
            )
        )
    }

    /// The ids of `ids` a relay round claims now (it publishes nothing and deletes nothing).
    func claimedByARelay(_ ids: [Int64]) async throws -> [OutboxMessage] {
        let store = OutboxStore(
            connection: DedicatedConnection(configuration: try DatabaseConfiguration(url: TestEnvironment.databaseURL), logger: TestDatabase.logger)
        )
        let claimed = Claimed()
        _ = try await store.relay(limit: 100_000, logger: TestDatabase.logger) { messages in
            claimed.value.withLock { $0 += messages.filter { ids.contains($0.id) } }
            return []
        }
        await store.close()
        return claimed.value.withLock { $0 }
    }

    func remaining(_ ids: [Int64]) async throws -> Int {
        try await TestDatabase.count("SELECT count(*) FROM outbox WHERE id = ANY(\(ids))")
    }

    @Test func aDispatchedMessageArrivesOnceUnderItsRowsIdAndTheRowGoes() async throws {
        _ = try await SharedStack.shared.start()  // migrated database
        let routingKey = "test.dispatch.\(UUID().uuidString.prefix(8).lowercased())"
        let tap = try await EventTap(routingKeys: [routingKey])
        let connection = AMQPConnection(
            configuration: try AMQPConfiguration(url: TestEnvironment.amqpURL), name: "test-dispatch", topology: LeadTopology.exchanges,
            logger: TestDatabase.logger
        )
        guard await connection.waitUntilConnected(timeout: .seconds(20)) else { throw TestFailure("cannot connect") }
        let dispatcher = OutboxDispatcher(connection: connection, client: TestDatabase.client, logger: TestDatabase.logger)
        let running = Task { try await dispatcher.run() }

        let messages = try await writeLeased(5, routingKey: routingKey)
        let ids = messages.map(\.id)
        #expect(try await claimedByARelay(ids).isEmpty, "a relay leaves leased rows alone")
        #expect(dispatcher.dispatch(messages))
        try await eventually("the rows deleted once confirmed") { try await remaining(ids) == 0 ? true : nil }
        let received = try await eventually("five messages on the bus") {
            let received = tap.messages(routingKey: routingKey) { _ in true }
            return received.count >= 5 ? received : nil
        }
        #expect(received.count == 5, "each once")
        #expect(received.map(\.messageID) == messages.map { $0.messageID.uuidString.lowercased() }, "in order, under the rows' ids")

        running.cancel()
        await tap.close()
        await connection.close()
    }

    @Test func whatTheBrokerCannotTakeIsRelayedWhenTheLeaseEnds() async throws {
        _ = try await SharedStack.shared.start()
        let routingKey = "test.dispatch.\(UUID().uuidString.prefix(8).lowercased())"
        let tap = try await EventTap(routingKeys: [routingKey])
        let closed = AMQPConnection(
            configuration: try AMQPConfiguration(url: TestEnvironment.amqpURL), name: "test-dispatch-closed",
            topology: LeadTopology.exchanges, logger: TestDatabase.logger
        )
        guard await closed.waitUntilConnected(timeout: .seconds(20)) else { throw TestFailure("cannot connect") }
        await closed.close()  // the broker is out of reach
        let dispatcher = OutboxDispatcher(connection: closed, client: TestDatabase.client, logger: TestDatabase.logger)

        let messages = try await writeLeased(3, routingKey: routingKey)
        let ids = messages.map(\.id)
        #expect(!dispatcher.dispatch(messages), "nothing handed to a closed connection")
        #expect(try await remaining(ids) == 3, "the rows stay")
        #expect(try await claimedByARelay(ids).isEmpty, "leased until the lease ends")

        // The lease ends (a crashed worker's, or this one's): a relay publishes the rows, under the same message
        // ids. This test's relay round, or the running services' relays, whichever claims them first.
        try await TestDatabase.client.query(
            "UPDATE outbox SET leased_until = now() - interval '1 second' WHERE id = ANY(\(ids))", logger: TestDatabase.logger
        )
        let connection = AMQPConnection(
            configuration: try AMQPConfiguration(url: TestEnvironment.amqpURL), name: "test-dispatch-relay",
            topology: LeadTopology.exchanges, logger: TestDatabase.logger
        )
        guard await connection.waitUntilConnected(timeout: .seconds(20)) else { throw TestFailure("cannot connect") }
        let store = OutboxStore(
            connection: DedicatedConnection(configuration: try DatabaseConfiguration(url: TestEnvironment.databaseURL), logger: TestDatabase.logger)
        )
        _ = try await store.relay(limit: 100_000, logger: TestDatabase.logger) { claimed in
            let ours = claimed.filter { ids.contains($0.id) }
            let results = await connection.publishInOrder(ours.map(\.outgoing)).confirmations()
            return zip(ours, results).compactMap { message, error in error == nil ? message.id : nil }
        }
        try await eventually("the rows relayed and deleted") { try await remaining(ids) == 0 ? true : nil }
        let received = try await eventually("three messages on the bus") {
            let received = tap.messages(routingKey: routingKey) { _ in true }
            return received.count >= 3 ? received : nil
        }
        #expect(received.map(\.messageID) == messages.map { $0.messageID.uuidString.lowercased() }, "once each, same ids")
        await store.close()
        await connection.close()
        await tap.close()
    }
}

private final class Claimed: Sendable {
    let value = Mutex<[OutboxMessage]>([])
}
