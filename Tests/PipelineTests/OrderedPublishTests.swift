import AMQP
import Foundation
import LeadStore
import Logging
import Testing

/// `AMQPConnection.publishInOrder`, which the outbox relay uses: the broker receives a batch in the order
/// given, every message is confirmed, and a connection that cannot take the batch fails each message at once.
@Suite struct OrderedPublishTests {
    @Test func aBatchArrivesInOrderAndIsConfirmed() async throws {
        let queue = "test.ordered.\(UUID().uuidString.prefix(8).lowercased())"
        var topology = Topology()
        topology.queues.append(.init(name: queue, type: .quorum))
        let connection = AMQPConnection(
            configuration: try AMQPConfiguration(url: TestEnvironment.amqpURL), name: "test-ordered", topology: topology,
            logger: .init(label: "test-ordered")
        )
        guard await connection.waitUntilConnected(timeout: .seconds(20)) else { throw TestFailure("cannot connect") }
        // Through the default exchange, straight to the queue; two batches in flight at once, as the relay's
        // pipelined rounds have them.
        let first = connection.publishInOrder((0..<1000).map { message($0, to: queue) })
        let second = connection.publishInOrder((1000..<2000).map { message($0, to: queue) })
        let results = await first.confirmations() + second.confirmations()
        #expect(results.count == 2000)
        #expect(results.allSatisfy { $0 == nil }, "every message confirmed")

        let deliveries = connection.consume(queue: queue, prefetch: 500)
        let received = try await withDeadline(.seconds(30)) {
            var received: [Int] = []
            while received.count < 2000, let batch = await deliveries.nextBatch(max: 500) {
                received += batch.compactMap { Int(String(decoding: $0.body, as: UTF8.self)) }
                connection.ack(batch.last!, multiple: true)
            }
            return received
        }
        #expect(received == Array(0..<2000), "messages arrive in the order they were handed over")
        deliveries.interrupt()
        try await connection.deleteQueue(queue)
        await connection.close()

        // A closed connection takes nothing: each message fails at once, none is left waiting.
        let refused = await connection.publishInOrder((0..<3).map { message($0, to: queue) }).confirmations()
        #expect(refused.count == 3)
        #expect(refused.allSatisfy { $0?.code == .closed })
    }

    /// Publishes are encoded by the shim, several to one `send(2)`: bodies across the frame size (131,072 bytes
    /// with 8 of framing) arrive whole, with their properties; a message that cannot be encoded fails alone.
    @Test func framesSplitAtTheFrameSizeAndArriveWhole() async throws {
        let queue = "test.frames.\(UUID().uuidString.prefix(8).lowercased())"
        var topology = Topology()
        topology.queues.append(.init(name: queue, type: .quorum))
        let connection = AMQPConnection(
            configuration: try AMQPConfiguration(url: TestEnvironment.amqpURL), name: "test-frames", topology: topology,
            logger: .init(label: "test-frames")
        )
        guard await connection.waitUntilConnected(timeout: .seconds(20)) else { throw TestFailure("cannot connect") }
        let sizes = [0, 1, 417, 131_063, 131_064, 131_065, 262_128, 300_001]
        let messages = sizes.enumerated().map { index, size in
            OutgoingMessage(
                exchange: "", routingKey: queue, body: Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }),
                messageID: "frames-\(index)", headers: ["size": .int(Int64(size)), "label": .string("message \(index)")]
            )
        }
        var tooLong = messages[0]
        tooLong.routingKey = String(repeating: "k", count: 256)
        let results = await connection.publishInOrder(messages + [tooLong] + messages.prefix(1)).confirmations()
        #expect(results.prefix(sizes.count).allSatisfy { $0 == nil }, "every well-formed message confirmed")
        #expect(results[sizes.count]?.code == .operationFailed, "the routing key over 255 bytes fails its message")
        #expect(results[sizes.count + 1] == nil, "the message after it still goes out")
        #expect(connection.isConnected)

        let deliveries = connection.consume(queue: queue, prefetch: 50)
        let received = try await withDeadline(.seconds(30)) {
            var received: [Delivery] = []
            while received.count < sizes.count + 1, let batch = await deliveries.nextBatch(max: 50) {
                received += batch
                connection.ack(batch.last!, multiple: true)
            }
            return received
        }
        #expect(received.count == sizes.count + 1)
        for (sent, delivery) in zip(messages + messages.prefix(1), received) {
            #expect(delivery.body == sent.body, "body of \(sent.messageID ?? "")")
            #expect(delivery.messageID == sent.messageID)
            #expect(delivery.headers == sent.headers)
        }
        deliveries.interrupt()
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    private func message(_ number: Int, to queue: String) -> OutgoingMessage {
        OutgoingMessage(exchange: "", routingKey: queue, body: Data("\(number)".utf8), messageID: "ordered-\(number)")
    }
}
