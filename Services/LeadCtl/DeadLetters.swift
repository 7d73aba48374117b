import AMQP
import ArgumentParser
import Foundation
import LeadService
import Logging

struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect and replay dead-lettered messages.",
        subcommands: [List.self, Replay.self]
    )

    static let workQueues = [LeadTopology.scorerQueue, LeadTopology.conversionQueue, LeadTopology.alertsQueue]

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show what is dead and why (messages stay where they are).")

        @Option(help: "Work queue whose dead letters to show (default: all).") var queue: String?
        @Option(help: "At most this many messages per queue.") var limit = 50

        func run() async throws {
            let connection = try await DeadLetters.connect()
            for work in queue.map({ [$0] }) ?? DeadLetters.workQueues {
                let dead = LeadTopology.deadQueue(for: work)
                let count = try await connection.messageCount(queue: dead)
                print("\(dead): \(count) message(s)")
                guard count > 0 else { continue }
                // Peek: take them without acking; closing the connection puts them back.
                let peek = try await DeadLetters.connect()
                let deliveries = try await DeadLetters.take(min(count, limit), from: dead, on: peek)
                for delivery in deliveries {
                    let reason = delivery.headers["x-death-reason"]?.stringValue ?? "rejected by the broker (delivery limit)"
                    let when = delivery.headers["x-dead-at"]?.stringValue ?? "-"
                    let preview = String(decoding: delivery.body.prefix(160), as: UTF8.self)
                    print("  \(delivery.messageID ?? "(no id)")  \(when)  \(delivery.headers["x-original-routing-key"]?.stringValue ?? delivery.routingKey)")
                    print("    reason: \(reason)")
                    print("    body:   \(preview)\(delivery.body.count > 160 ? "..." : "")")
                }
                await peek.close()
            }
            await connection.close()
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send dead letters back to their work queue. Consumers dedupe by event id, so a replay never duplicates."
        )

        @Option(help: "Work queue whose dead letters to replay, e.g. scorer.interactions.") var queue: String
        @Option(help: "At most this many messages (default: all).") var limit: Int?

        func run() async throws {
            guard DeadLetters.workQueues.contains(queue) else {
                throw ValidationError("unknown queue \(queue); one of \(DeadLetters.workQueues.joined(separator: ", "))")
            }
            let connection = try await DeadLetters.connect()
            let dead = LeadTopology.deadQueue(for: queue)
            let count = try await connection.messageCount(queue: dead)
            let wanted = min(count, limit ?? count)
            guard wanted > 0 else {
                print("\(dead) is empty")
                await connection.close()
                return
            }
            let deliveries = connection.consume(queue: dead, prefetch: 500)
            var replayed = 0
            while replayed < wanted, let batch = try await DeadLetters.next(from: deliveries, max: wanted - replayed) {
                for delivery in batch {
                    var headers = delivery.headers
                    for key in ["x-death-reason", "x-attempts", "x-last-error", "x-dead-at", "x-delivery-count"] { headers[key] = nil }
                    headers["x-replayed-at"] = .string(ISO8601DateFormatter().string(from: Date()))
                    // Straight to the work queue through the default exchange: only its consumer sees it again.
                    try await connection.publish(
                        OutgoingMessage(exchange: "", routingKey: queue, body: delivery.body, messageID: delivery.messageID, headers: headers)
                    )
                    connection.ack(delivery)
                    replayed += 1
                    if replayed % 1000 == 0 { print("replayed \(replayed)/\(wanted)") }
                }
            }
            print("replayed \(replayed) message(s) from \(dead) to \(queue)")
            await connection.close()
        }
    }

    static func connect() async throws -> AMQPConnection {
        let configuration = try ServiceConfiguration()
        let connection = AMQPConnection(
            configuration: configuration.amqp,
            name: "leadctl",
            topology: LeadTopology.scorer(configuration.queueType)
                .merging(LeadTopology.conversion(configuration.queueType))
                .merging(LeadTopology.alerts(configuration.queueType)),
            logger: Logger(label: "leadctl")
        )
        guard await connection.waitUntilConnected(timeout: .seconds(10)) else {
            throw ValidationError("cannot reach the broker at \(configuration.amqp): \(connection.lastError ?? "timeout")")
        }
        return connection
    }

    /// Takes up to `count` messages (unacknowledged) from `queue`.
    static func take(_ count: Int, from queue: String, on connection: AMQPConnection) async throws -> [Delivery] {
        let deliveries = connection.consume(queue: queue, prefetch: min(max(count, 1), 1000))
        var taken: [Delivery] = []
        while taken.count < count, let batch = try await next(from: deliveries, max: count - taken.count) {
            taken += batch
        }
        return taken
    }

    /// The next deliveries, or nil when none arrives within `timeout`.
    static func next(from deliveries: DeliveryQueue, max: Int, timeout: Duration = .seconds(5)) async throws -> [Delivery]? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while deliveries.count == 0 {
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(20))
        }
        return await deliveries.nextBatch(max: max)
    }
}
