import CRabbitMQ
import Foundation
import Glibc
import Logging
import Synchronization

/// One broker connection with one channel, in confirm mode, owned by a dedicated thread.
///
/// librabbitmq is blocking and a connection may be used by one thread at a time, so every C call runs
/// on this connection's own thread (never on the Swift concurrency pool or a NIO event loop). The async
/// methods below hand commands to that thread and resume when it has an answer: `publish` resumes when
/// the broker confirms that very message (confirms are pipelined; many publishes share the connection).
///
/// The connection reconnects by itself (rotating through the configured endpoints), re-declares its
/// topology and re-subscribes its consumers. While it is down, `publish` fails at once with
/// `AMQPError.Code.notConnected`.
package final class AMQPConnection: Sendable, CustomStringConvertible {
    package let name: String
    let shared: Mutex<SharedState>
    let wakeFD: Int32
    private let worker: ConnectionWorker
    private let maxUnconfirmed: Int

    struct SharedState {
        var commands: [Command] = []
        var connected = false
        var blocked = false
        var closed = false
        var unconfirmed = 0
        var lastError: String?
    }

    enum Command {
        case publish(OutgoingMessage, ConfirmWaiter)
        case ack(tag: UInt64, multiple: Bool, generation: UInt64)
        case nack(tag: UInt64, multiple: Bool, requeue: Bool, generation: UInt64)
        case consume(queue: String, prefetch: Int, DeliveryQueue)
        case queueOperation(QueueOperation, String, CheckedContinuation<Int, any Error>)
        case close(CheckedContinuation<Void, Never>)
    }

    enum QueueOperation {
        case purge, messageCount, delete
    }

    /// Starts the connection thread; the first connect happens in the background.
    package init(configuration: AMQPConfiguration, name: String, topology: Topology = Topology(), logger: Logger) {
        self.name = name
        self.maxUnconfirmed = configuration.maxUnconfirmed
        self.shared = Mutex(SharedState())
        self.wakeFD = lp_eventfd()
        var logger = logger
        logger[metadataKey: "amqp.connection"] = "\(name)"
        self.worker = ConnectionWorker(configuration: configuration, name: name, topology: topology, logger: logger)
        worker.owner = self
        let worker = self.worker
        // The thread names itself: Foundation's `Thread.name` set before `start()` never reaches the kernel here,
        // and Linux refuses a name over 15 bytes, so the thread showed in top and perf under the name of the pool
        // thread that created it. "amqp-ingest-1".
        let shortName = name.hasPrefix("lead-") ? name.dropFirst(5) : Substring(name)
        let threadName = String(decoding: "amqp-\(shortName)".utf8.prefix(15), as: UTF8.self)
        let thread = Thread {
            lp_name_thread(threadName)
            worker.run()
        }
        thread.start()
    }

    deinit {
        Glibc.close(wakeFD)
    }

    package var description: String { "AMQPConnection(\(name))" }

    /// Whether the connection is up and its topology declared.
    package var isConnected: Bool { shared.withLock { $0.connected } }

    /// Whether the broker has blocked publishing (memory or disk alarm).
    package var isBlocked: Bool { shared.withLock { $0.blocked } }

    /// Messages published and not yet confirmed.
    package var unconfirmedCount: Int { shared.withLock { $0.unconfirmed } }

    /// The last connection failure, for readiness reports.
    package var lastError: String? { shared.withLock { $0.lastError } }

    /// Waits until the connection is up, or the timeout passes; returns whether it is up.
    package func waitUntilConnected(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if isConnected { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return isConnected
    }

    /// Publishes a message and returns once the broker has confirmed it.
    /// Throws `AMQPError` when it cannot be sent or was not confirmed (nack, lost connection, timeout).
    package func publish(_ message: OutgoingMessage) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome: Result<Bool, AMQPError> = shared.withLock { state in
                if let refusal = refusal(state) { return .failure(refusal) }
                state.unconfirmed += 1
                state.commands.append(.publish(message, .single(continuation)))
                return .success(state.commands.count == 1)
            }
            switch outcome {
            case .failure(let error): continuation.resume(throwing: error)
            case .success(let needsWake): if needsWake { lp_wake(wakeFD) }
            }
        }
    }

    /// Hands the messages to the connection in this order, so they reach the broker in it, and returns at
    /// once; `confirmations()` on the result waits for the broker's answer to each. A message the
    /// connection cannot take (down, blocked, too many unconfirmed) fails at once, the others go out.
    package func publishInOrder(_ messages: [OutgoingMessage]) -> PublishBatch {
        let batch = PublishBatch(count: messages.count)
        var refused: [(Int, AMQPError)] = []
        let needsWake = shared.withLock { state in
            let wasEmpty = state.commands.isEmpty
            for (index, message) in messages.enumerated() {
                if let refusal = refusal(state) {
                    refused.append((index, refusal))
                    continue
                }
                state.unconfirmed += 1
                state.commands.append(.publish(message, .batch(batch, index: index)))
            }
            return wasEmpty && !state.commands.isEmpty
        }
        for (index, error) in refused { batch.resolve(index, error) }
        if needsWake { lp_wake(wakeFD) }
        return batch
    }

    /// Why a publish cannot be taken now, if it cannot.
    private func refusal(_ state: SharedState) -> AMQPError? {
        if state.closed { return AMQPError(.closed, "connection \(name) is closed") }
        if !state.connected { return AMQPError(.notConnected, state.lastError ?? "not connected to the broker") }
        if state.blocked { return AMQPError(.blocked, "the broker has blocked publishing") }
        if state.unconfirmed >= maxUnconfirmed {
            return AMQPError(.overloaded, "\(state.unconfirmed) messages await confirmation")
        }
        return nil
    }

    /// Subscribes to a queue. Deliveries keep flowing across reconnects (with a new `generation`);
    /// the queue finishes when the connection is closed.
    package func consume(queue: String, prefetch: Int) -> DeliveryQueue {
        let deliveries = DeliveryQueue()
        enqueue(.consume(queue: queue, prefetch: prefetch, deliveries))
        return deliveries
    }

    /// Acknowledges a delivery (and, with `multiple`, every earlier one on this connection).
    package func ack(_ delivery: Delivery, multiple: Bool = false) {
        enqueue(.ack(tag: delivery.deliveryTag, multiple: multiple, generation: delivery.generation))
    }

    /// Rejects a delivery: back to the queue with `requeue`, otherwise to the queue's dead-letter exchange.
    package func reject(_ delivery: Delivery, requeue: Bool) {
        enqueue(.nack(tag: delivery.deliveryTag, multiple: false, requeue: requeue, generation: delivery.generation))
    }

    /// Removes every ready message from a queue; returns how many.
    @discardableResult
    package func purge(queue: String) async throws -> Int {
        try await queueOperation(.purge, queue)
    }

    /// Ready messages in a queue.
    package func messageCount(queue: String) async throws -> Int {
        try await queueOperation(.messageCount, queue)
    }

    package func deleteQueue(_ queue: String) async throws {
        _ = try await queueOperation(.delete, queue)
    }

    /// Stops accepting publishes, waits (bounded) for outstanding confirms, closes the connection and
    /// finishes consumer streams. Unacknowledged deliveries go back to their queues.
    package func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            shared.withLock { $0.closed = true }
            enqueue(.close(continuation))
        }
    }

    private func queueOperation(_ operation: QueueOperation, _ queue: String) async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.queueOperation(operation, queue, continuation))
        }
    }

    private func enqueue(_ command: Command) {
        let needsWake = shared.withLock { state in
            state.commands.append(command)
            return state.commands.count == 1
        }
        if needsWake { lp_wake(wakeFD) }
    }
}

extension AMQPConnection.Command {
    var isPublish: Bool {
        if case .publish = self { return true }
        return false
    }
}
