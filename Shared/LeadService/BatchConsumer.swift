import AMQP
import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Consumes one queue in batches: decode, handle in one transaction, then one multiple-ack.
///
/// - A message that cannot be decoded goes to the dead-letter queue at once, with the reason in `x-death-reason`.
/// - A batch that fails because the database is unavailable is retried with backoff, without counting
///   attempts, until it succeeds or the service stops (its messages are then redelivered).
/// - Otherwise the batch is split, message by message; a message that fails on its own is republished with
///   `x-attempts` + 1 (so it never blocks the queue) and dead-lettered on its fifth failure, or at once
///   when the failure is permanent.
/// Acks are sent only after the transaction commits. Batches are pipelined one deep: the next batch is taken
/// and decoded while the previous one is in its transaction; batches still commit and are acked in order.
package struct BatchConsumer<Handler: DeliveryHandler>: Service, CustomStringConvertible {
    let connection: AMQPConnection
    let queue: String
    let handler: Handler
    let prefetch: Int
    let maxBatch: Int
    let maxAttempts: Int
    let logger: Logger
    let startGate: StartGate?
    let onCommitted: @Sendable () -> Void
    private let metrics: ConsumerMetrics

    package init(
        connection: AMQPConnection,
        queue: String,
        handler: Handler,
        prefetch: Int = 1000,
        maxBatch: Int = 500,
        maxAttempts: Int = 5,
        startGate: StartGate? = nil,
        logger: Logger,
        onCommitted: @escaping @Sendable () -> Void = {}
    ) {
        self.connection = connection
        self.queue = queue
        self.handler = handler
        self.prefetch = prefetch
        self.maxBatch = maxBatch
        self.maxAttempts = maxAttempts
        self.startGate = startGate
        self.logger = logger
        self.onCommitted = onCommitted
        self.metrics = ConsumerMetrics(queue: queue)
    }

    package var description: String { "BatchConsumer(\(queue))" }

    package func run() async throws {
        if let startGate {
            guard await startGate.wait() else { return }
        }
        let deliveries = connection.consume(queue: queue, prefetch: prefetch)
        logger.info("consuming", metadata: ["queue": "\(queue)", "prefetch": "\(prefetch)"])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await monitorQueueDepth() }
            await withGracefulShutdownHandler {
                await withTaskGroup(of: Void.self) { commits in
                    while let batch = await deliveries.nextBatch(max: maxBatch) {
                        let start = ContinuousClock.now
                        let decoded = decode(batch)
                        await commits.next()  // the previous batch is committed and acked
                        commits.addTask { await commit(batch, decoded, since: start) }
                        metrics.backlog.record(deliveries.count)
                    }
                    await commits.waitForAll()
                }
            } onGracefulShutdown: {
                deliveries.interrupt()
            }
            group.cancelAll()
        }
        await handler.shutdown()
        logger.info("consumer stopped", metadata: ["queue": "\(queue)"])
    }

    /// The queue's ready messages (the lag), every few seconds.
    private func monitorQueueDepth() async {
        while !Task.isCancelled {
            if connection.isConnected, let depth = try? await connection.messageCount(queue: queue) {
                metrics.queueDepth.record(depth)
            }
            try? await Task.sleep(for: .seconds(5))
        }
    }

    // MARK: - One batch

    struct Decoded: Sendable {
        var items: [(Delivery, Handler.Item)] = []
        var rejected: [(Delivery, String)] = []
    }

    private func decode(_ batch: [Delivery]) -> Decoded {
        var decoded = Decoded()
        decoded.items.reserveCapacity(batch.count)
        for delivery in batch {
            do throws(PermanentFailure) {
                decoded.items.append((delivery, try handler.decode(delivery)))
            } catch {
                decoded.rejected.append((delivery, error.reason))
            }
        }
        return decoded
    }

    private func commit(_ batch: [Delivery], _ decoded: Decoded, since start: ContinuousClock.Instant) async {
        let items = decoded.items
        for (delivery, reason) in decoded.rejected {
            guard await deadLetter(delivery, reason: reason) else { return }  // broker gone: all redelivered later
        }
        guard await handleWithRetry(items) else { return }
        acknowledge(batch)
        metrics.batchSize.record(batch.count)
        metrics.processed.increment(by: items.count)
        metrics.batchDuration.record(duration: ContinuousClock.now - start)
        onCommitted()
    }

    /// Handles the items; returns false when the service is stopping with the batch unhandled.
    private func handleWithRetry(_ items: [(Delivery, Handler.Item)]) async -> Bool {
        guard !items.isEmpty else { return true }
        var backoff: Duration = .milliseconds(100)
        var failures = 0
        while true {
            do {
                try await reportingStalls(batch: items.count) {
                    try await handler.handle(items.map(\.1), logger: logger)
                }
                if failures > 0 { logger.info("batch succeeded after retrying", metadata: ["attempts": "\(failures + 1)"]) }
                return true
            } catch {
                let kind = ErrorClassification.classify(error)
                failures += 1
                metrics.failedBatches.increment()
                if kind == .transient {
                    if failures == 1 || failures % 10 == 0 {
                        logger.warning(
                            "batch failed, database unavailable; retrying",
                            metadata: ["error": "\(String(reflecting: error))", "attempt": "\(failures)", "batch": "\(items.count)"]
                        )
                    }
                    guard await sleepUnlessShuttingDown(backoff) else { return false }
                    backoff = min(backoff * 2, .seconds(5))
                    continue
                }
                logger.warning(
                    "batch failed; handling its messages one by one",
                    metadata: ["error": "\(String(reflecting: error))", "batch": "\(items.count)"]
                )
                return await handleOneByOne(items)
            }
        }
    }

    /// Runs `body`, logging while it waits unusually long (a database that stopped answering makes the
    /// pool wait for a connection instead of failing).
    private func reportingStalls(batch: Int, _ body: () async throws -> Void) async throws {
        let logger = self.logger
        let watchdog = Task {
            var waited: Duration = .zero
            for interval in [Duration.seconds(5)] + Array(repeating: .seconds(30), count: 1000) {
                try await Task.sleep(for: interval)
                waited += interval
                logger.warning("batch still waiting for the database", metadata: ["waited": "\(waited)", "batch": "\(batch)"])
            }
        }
        defer { watchdog.cancel() }
        try await body()
    }

    private func handleOneByOne(_ items: [(Delivery, Handler.Item)]) async -> Bool {
        for (delivery, item) in items {
            var backoff: Duration = .milliseconds(100)
            while true {
                do {
                    try await handler.handle([item], logger: logger)
                    break
                } catch {
                    let kind = ErrorClassification.classify(error)
                    if kind == .transient {
                        guard await sleepUnlessShuttingDown(backoff) else { return false }
                        backoff = min(backoff * 2, .seconds(5))
                        continue
                    }
                    let attempts = delivery.previousAttempts + 1
                    let reason = String(reflecting: error)
                    if kind == .permanent || attempts >= maxAttempts {
                        guard await deadLetter(delivery, reason: "failed \(attempts) time(s): \(reason)") else { return false }
                    } else {
                        guard await retryLater(delivery, attempts: attempts, reason: reason) else { return false }
                    }
                    break
                }
            }
        }
        return true
    }

    // MARK: - Broker side

    private func acknowledge(_ batch: [Delivery]) {
        var lastByGeneration: [UInt64: Delivery] = [:]
        for delivery in batch {
            if let last = lastByGeneration[delivery.generation], last.deliveryTag > delivery.deliveryTag { continue }
            lastByGeneration[delivery.generation] = delivery
        }
        for delivery in lastByGeneration.values { connection.ack(delivery, multiple: true) }
    }

    /// Publishes the message to `<queue>.dead` with the reason; returns false if the broker did not confirm.
    private func deadLetter(_ delivery: Delivery, reason: String) async -> Bool {
        var headers = delivery.headers
        headers["x-death-reason"] = .string(String(reason.prefix(900)))
        headers["x-original-queue"] = .string(queue)
        headers["x-original-routing-key"] = .string(delivery.routingKey)
        headers["x-original-exchange"] = .string(delivery.exchange)
        headers["x-dead-at"] = .string(ISO8601DateFormatter().string(from: Date()))
        let message = OutgoingMessage(
            exchange: LeadTopology.deadLetterExchange,
            routingKey: queue,
            body: delivery.body,
            messageID: delivery.messageID,
            headers: headers
        )
        do {
            try await connection.publish(message)
            metrics.deadLettered.increment()
            logger.error(
                "message dead-lettered",
                metadata: ["queue": "\(queue)", "message.id": "\(delivery.messageID ?? "-")", "reason": "\(reason)"]
            )
            return true
        } catch {
            logger.warning("cannot dead-letter message; it will be redelivered", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Puts the message back at the end of the queue with its attempt count.
    private func retryLater(_ delivery: Delivery, attempts: Int, reason: String) async -> Bool {
        var headers = delivery.headers
        headers["x-attempts"] = .int(Int64(attempts))
        headers["x-last-error"] = .string(String(reason.prefix(900)))
        if headers["x-original-routing-key"] == nil { headers["x-original-routing-key"] = .string(delivery.routingKey) }
        let message = OutgoingMessage(
            exchange: "",
            routingKey: queue,
            body: delivery.body,
            messageID: delivery.messageID,
            headers: headers
        )
        do {
            try await connection.publish(message)
            metrics.retried.increment()
            logger.warning(
                "message failed; retrying later",
                metadata: ["queue": "\(queue)", "message.id": "\(delivery.messageID ?? "-")", "attempt": "\(attempts)", "error": "\(reason)"]
            )
            return true
        } catch {
            return false
        }
    }

    private func sleepUnlessShuttingDown(_ duration: Duration) async -> Bool {
        guard !Task.isShuttingDownGracefully else { return false }
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
        return !Task.isShuttingDownGracefully && !Task.isCancelled
    }
}

/// Metric objects of one consumer, created once.
struct ConsumerMetrics: Sendable {
    let processed: Counter
    let failedBatches: Counter
    let deadLettered: Counter
    let retried: Counter
    let batchSize: Recorder
    let batchDuration: Timer
    let backlog: Gauge
    let queueDepth: Gauge

    init(queue: String) {
        let dimensions = [("queue", queue)]
        processed = Counter(label: "consumer_messages_processed_total", dimensions: dimensions)
        failedBatches = Counter(label: "consumer_batches_failed_total", dimensions: dimensions)
        deadLettered = Counter(label: "consumer_messages_dead_lettered_total", dimensions: dimensions)
        retried = Counter(label: "consumer_messages_retried_total", dimensions: dimensions)
        batchSize = Recorder(label: "consumer_batch_size", dimensions: dimensions, aggregate: true)
        batchDuration = Timer(label: "consumer_batch_duration_seconds", dimensions: dimensions)
        backlog = Gauge(label: "consumer_prefetched_messages", dimensions: dimensions)
        queueDepth = Gauge(label: "consumer_queue_ready_messages", dimensions: dimensions)
    }
}
