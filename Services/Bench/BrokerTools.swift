import AMQP
import Foundation
import LeadService
import Logging

/// The benchmark's own broker connections: the raw publish ceiling, queue depths, purges.
struct BrokerTools {
    static let ceilingQueue = "bench.ceiling"
    let publisher: AMQPConnection
    let consumer: AMQPConnection
    let configuration: ServiceConfiguration

    init(configuration: ServiceConfiguration) async throws {
        self.configuration = configuration
        let topology = LeadTopology.ingest(configuration.queueType).merging(
            Topology(queues: [.init(name: Self.ceilingQueue, type: configuration.queueType)])
        )
        publisher = AMQPConnection(configuration: configuration.amqp, name: "bench-publisher", topology: topology, logger: Logger(label: "bench"))
        consumer = AMQPConnection(configuration: configuration.amqp, name: "bench-consumer", topology: topology, logger: Logger(label: "bench"))
        guard await publisher.waitUntilConnected(timeout: .seconds(10)), await consumer.waitUntilConnected(timeout: .seconds(10)) else {
            throw BenchError("cannot connect to the broker at \(configuration.amqp)")
        }
    }

    /// Persistent messages published with pipelined confirms (at most `window` unconfirmed) exactly where
    /// lead-ingest publishes (`leads.interactions`, routed to the scorer's and the conversion's queues), while
    /// `drain` consumers empty those queues: `messages` of them, or as many as `duration` allows. Returns the
    /// messages confirmed and the rate, messages per second.
    func publishCeiling(
        messages: Int = .max, duration: Duration? = nil, body: Data, window: Int = 1000
    ) async throws -> (messages: Int, rate: Double) {
        let publisher = self.publisher
        let message = OutgoingMessage(
            exchange: LeadTopology.interactionsExchange, routingKey: "interaction.face_analysis", body: body, messageID: nil
        )
        let started = ContinuousClock.now
        let stopAt = duration.map { started.advanced(by: $0) }
        var sent = 0
        try await withThrowingTaskGroup(of: Void.self) { group in
            while sent < messages, stopAt.map({ ContinuousClock.now < $0 }) ?? true {
                if sent >= window { try await group.next() }
                group.addTask { try await publisher.publish(message) }
                sent += 1
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        return (sent, Double(sent) / elapsed.seconds)
    }

    /// Plain consumers that acknowledge everything arriving on `queues`, each on its own connection, until stopped.
    func drain(_ queues: [String]) async throws -> Drains {
        var connections: [AMQPConnection] = []
        var tasks: [Task<Void, Never>] = []
        for queue in queues {
            let connection = AMQPConnection(configuration: configuration.amqp, name: "bench-drain", logger: Logger(label: "bench"))
            guard await connection.waitUntilConnected(timeout: .seconds(10)) else { throw BenchError("drain cannot connect") }
            let deliveries = connection.consume(queue: queue, prefetch: 1000)
            connections.append(connection)
            tasks.append(Task {
                while let batch = await deliveries.nextBatch(max: 1000) {
                    connection.ack(batch.last!, multiple: true)
                }
            })
        }
        return Drains(connections: connections, tasks: tasks)
    }

    struct Drains {
        let connections: [AMQPConnection]
        let tasks: [Task<Void, Never>]

        func stop() async {
            for connection in connections { await connection.close() }
            for task in tasks { await task.value }
        }
    }

    func messageCount(_ queue: String) async throws -> Int {
        try await publisher.messageCount(queue: queue)
    }

    func purge(_ queue: String) async throws {
        try await publisher.purge(queue: queue)
    }

    func waitUntilEmpty(_ queues: [String], timeout: Duration) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        for queue in queues {
            while try await messageCount(queue) > 0 {
                guard ContinuousClock.now < deadline else { throw BenchError("\(queue) not drained within \(timeout)") }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    func close() async {
        await publisher.close()
        await consumer.close()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { seconds * 1000 }
}
