import AMQP
import Foundation
import LeadService
import Logging
import Synchronization

/// A private queue bound to `leads.events` (or another exchange), recording what is published there.
final class EventTap: Sendable {
    let queue: String
    private let connection: AMQPConnection
    private let received: Received
    private let task: Task<Void, Never>

    final class Received: Sendable {
        let deliveries = Mutex<[Delivery]>([])
    }

    init(routingKeys: [String], exchange: String = LeadTopology.eventsExchange, amqpURL: String = TestEnvironment.amqpURL) async throws {
        let queue = "test.tap.\(UUID().uuidString.prefix(8).lowercased())"
        self.queue = queue
        var topology = LeadTopology.exchanges
        topology.queues.append(.init(name: queue, type: .classic))
        topology.bindings += routingKeys.map { .init(queue: queue, exchange: exchange, routingKey: $0) }
        let connection = AMQPConnection(
            configuration: try AMQPConfiguration(url: amqpURL),
            name: "test-tap",
            topology: topology,
            logger: Logger(label: "test-tap")
        )
        self.connection = connection
        guard await connection.waitUntilConnected(timeout: .seconds(10)) else { throw TestFailure("tap cannot connect") }
        let deliveries = connection.consume(queue: queue, prefetch: 1000)
        let received = Received()
        self.received = received
        task = Task {
            while let batch = await deliveries.nextBatch(max: 1000) {
                received.deliveries.withLock { $0.append(contentsOf: batch) }
                if let last = batch.last { connection.ack(last, multiple: true) }
            }
        }
    }

    var messages: [Delivery] { received.deliveries.withLock { $0 } }

    /// Messages whose JSON body satisfies `predicate`.
    func messages(routingKey: String, where predicate: ([String: Any]) -> Bool) -> [Delivery] {
        messages.filter { delivery in
            guard delivery.routingKey == routingKey,
                let object = (try? JSONSerialization.jsonObject(with: delivery.body)) as? [String: Any]
            else { return false }
            return predicate(object)
        }
    }

    func close() async {
        try? await connection.deleteQueue(queue)
        await connection.close()
        task.cancel()
    }
}
