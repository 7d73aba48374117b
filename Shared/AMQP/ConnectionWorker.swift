import CRabbitMQ
import Foundation
import Logging
import Synchronization

/// The thread side of an `AMQPConnection`: owns the C connection and every piece of state that
/// touches it. `@unchecked Sendable` because it is handed to its thread once and used only there;
/// other threads talk to it through `AMQPConnection.shared` and the wake-up eventfd.
final class ConnectionWorker: @unchecked Sendable {
    private struct Consumer {
        var queue: String
        var prefetch: Int
        var deliveries: DeliveryQueue
        var tag: String
    }

    weak var owner: AMQPConnection?
    private let configuration: AMQPConfiguration
    private let name: String
    private let topology: Topology
    private let logger: Logger

    private var connection: amqp_connection_state_t?
    private var generation: UInt64 = 0
    private var endpointIndex = 0
    private var nextSequence: UInt64 = 1
    /// Unconfirmed publishes in sequence order.
    private var pending = PendingConfirms<ConfirmWaiter>()
    private var consumers: [Consumer] = []
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []
    private var closing = false
    private var closeDeadline = ContinuousClock.now
    private var reconnectAt = ContinuousClock.now
    private var backoff: Duration = .milliseconds(100)
    private var failedAttempts = 0
    private let event = UnsafeMutablePointer<lp_event>.allocate(capacity: 1)
    private var errorBuffer = [CChar](repeating: 0, count: 512)
    /// The frames of this turn's publishes, sent with one `send(2)` (`sendFrames`). librabbitmq's own publish
    /// makes one per frame, three a message: 25,000 calls a second at 8,000 requests/s in lead-ingest.
    private var frames = FrameBuffer()

    init(configuration: AMQPConfiguration, name: String, topology: Topology, logger: Logger) {
        self.configuration = configuration
        self.name = name
        self.topology = topology
        self.logger = logger
        event.initialize(to: lp_event())
    }

    deinit {
        event.deallocate()
    }

    // MARK: - Loop

    func run() {
        while let owner {
            let commands = owner.shared.withLock { state in
                let taken = state.commands
                state.commands.removeAll(keepingCapacity: true)
                return taken
            }
            for command in commands { handle(command, owner: owner) }
            sendFrames(owner: owner)

            if closing, pending.count == 0 || ContinuousClock.now >= closeDeadline {
                finishClose(owner: owner)
                return
            }
            guard let connection else {
                if !closing, ContinuousClock.now >= reconnectAt { connect(owner: owner) }
                if self.connection == nil { waitForWake(owner: owner, milliseconds: 50) }
                continue
            }
            pumpEvents(connection, owner: owner)
            expireConfirms(owner: owner)
        }
    }

    /// Reads frames until none is waiting (bounded, so commands get their turn).
    private func pumpEvents(_ connection: amqp_connection_state_t, owner: AMQPConnection) {
        var timeout: Int32 = 100
        for _ in 0..<512 {
            let kind = Int(lp_next_event(connection, owner.wakeFD, timeout, event))
            timeout = 0
            switch kind {
            case LP_EV_NONE, LP_EV_WAKE:
                return
            case LP_EV_ACK:
                resolveConfirms(upTo: event.pointee.delivery_tag, multiple: event.pointee.multiple != 0, error: nil)
            case LP_EV_NACK:
                resolveConfirms(
                    upTo: event.pointee.delivery_tag,
                    multiple: event.pointee.multiple != 0,
                    error: AMQPError(.nacked, "the broker refused the message")
                )
                // Seen on a quorum queue whose leader node was killed: the channel kept nacking every publish
                // although the queue had a new leader. A fresh connection (and channel) publishes again.
                connectionLost(reason: "the broker nacked a publish; reconnecting", owner: owner)
                return
            case LP_EV_DELIVERY:
                deliver(connection)
            case LP_EV_BLOCKED:
                logger.warning("broker blocked publishing (resource alarm)")
                owner.shared.withLock { $0.blocked = true }
            case LP_EV_UNBLOCKED:
                logger.info("broker unblocked publishing")
                owner.shared.withLock { $0.blocked = false }
            default:
                connectionLost(reason: text(of: event), owner: owner)
                return
            }
        }
    }

    private func handle(_ command: AMQPConnection.Command, owner: AMQPConnection) {
        // Whatever else a command sends must follow the publishes handed over before it.
        if !command.isPublish { sendFrames(owner: owner) }
        switch command {
        case .publish(let message, let waiter):
            publish(message, waiter: waiter, owner: owner)
        case .ack(let tag, let multiple, let generation):
            guard let connection, generation == self.generation else { return }
            let status = lp_ack(connection, tag, multiple ? 1 : 0)
            if status != 0 { connectionLost(reason: "basic.ack failed (\(status))", owner: owner) }
        case .nack(let tag, let multiple, let requeue, let generation):
            guard let connection, generation == self.generation else { return }
            let status = lp_nack(connection, tag, multiple ? 1 : 0, requeue ? 1 : 0)
            if status != 0 { connectionLost(reason: "basic.nack failed (\(status))", owner: owner) }
        case .consume(let queue, let prefetch, let continuation):
            let consumer = Consumer(
                queue: queue,
                prefetch: prefetch,
                deliveries: continuation,
                tag: "\(name)-\(queue)-\(consumers.count)"
            )
            consumers.append(consumer)
            if let connection, !startConsumer(consumer, on: connection) {
                connectionLost(reason: "basic.consume \(queue) failed: \(errorText)", owner: owner)
            }
        case .queueOperation(let operation, let queue, let continuation):
            guard let connection else {
                continuation.resume(throwing: AMQPError(.notConnected, "not connected to the broker"))
                return
            }
            let result: Int = queue.withCString { cQueue in
                switch operation {
                case .purge: Int(lp_queue_purge(connection, cQueue, &errorBuffer, errorBuffer.count))
                case .messageCount: Int(lp_queue_message_count(connection, cQueue, &errorBuffer, errorBuffer.count))
                case .delete: Int(lp_queue_delete(connection, cQueue, &errorBuffer, errorBuffer.count))
                }
            }
            if result < 0 {
                let error = AMQPError(.operationFailed, errorText)
                continuation.resume(throwing: error)
                connectionLost(reason: error.message, owner: owner)
            } else {
                continuation.resume(returning: result)
            }
        case .close(let continuation):
            closeWaiters.append(continuation)
            if !closing {
                closing = true
                closeDeadline = ContinuousClock.now.advanced(by: .seconds(5))
            }
        }
    }

    // MARK: - Publishing

    private func publish(
        _ message: OutgoingMessage,
        waiter: ConfirmWaiter,
        owner: AMQPConnection
    ) {
        guard let connection else {
            fail(waiter, AMQPError(.notConnected, "not connected to the broker"), owner: owner)
            return
        }
        let headers = message.packedHeaders
        errorBuffer[0] = 0
        let encoded = frames.append { buffer, capacity in
            message.exchange.withCString { exchange in
                message.routingKey.withCString { routingKey in
                    withOptionalCString(message.messageID) { messageID in
                        withOptionalCString(message.contentType) { contentType in
                            message.body.withUnsafeBytes { body in
                                headers.withUnsafeBufferPointer { packed in
                                    lp_encode_publish(
                                        connection, buffer, capacity, exchange, routingKey, body.baseAddress, body.count,
                                        messageID, contentType, message.persistent ? 1 : 0, packed.baseAddress,
                                        Int32(message.headers.count), &errorBuffer, errorBuffer.count
                                    )
                                }
                            }
                        }
                    }
                }
            }
        }
        guard encoded else {
            let reason = errorBuffer[0] == 0 ? "basic.publish: the message is too large to encode" : errorText
            fail(waiter, AMQPError(.operationFailed, reason), owner: owner)
            return
        }
        pending.append(sequence: nextSequence, waiter: waiter, deadline: ContinuousClock.now.advanced(by: configuration.confirmTimeout))
        nextSequence += 1
        if frames.count >= FrameBuffer.sendAt { sendFrames(owner: owner) }
    }

    /// Sends the publishes encoded so far; their confirms are pending already, so a failed send fails them
    /// with the connection.
    private func sendFrames(owner: AMQPConnection) {
        guard frames.count > 0 else { return }
        guard let connection else {
            frames.removeAll()
            return
        }
        let timeout = max(milliseconds(configuration.confirmTimeout), 1000)
        let status = frames.withBytes { lp_send_all(connection, $0, $1, timeout, &errorBuffer, errorBuffer.count) }
        frames.removeAll()
        if status != 0 { connectionLost(reason: errorText, owner: owner) }
    }

    private func resolveConfirms(upTo tag: UInt64, multiple: Bool, error: AMQPError?) {
        let resolved = pending.resolve(upTo: tag, multiple: multiple) { $0.resolve(error) }
        if resolved > 0 { owner?.shared.withLock { $0.unconfirmed -= resolved } }
    }

    private func expireConfirms(owner: AMQPConnection) {
        let now = ContinuousClock.now
        guard pending.hasExpired(before: now) else { return }
        let expired = pending.expire(before: now) { $0.resolve(AMQPError(.confirmTimeout, "no confirm from the broker in time")) }
        logger.warning("publishes not confirmed in time", metadata: ["amqp.expired": "\(expired)"])
        owner.shared.withLock { $0.unconfirmed -= expired }
    }

    private func failAllPending(_ error: AMQPError, owner: AMQPConnection) {
        let failed = pending.removeAll { $0.resolve(error) }
        if failed > 0 { owner.shared.withLock { $0.unconfirmed -= failed } }
    }

    private func fail(_ waiter: ConfirmWaiter, _ error: AMQPError, owner: AMQPConnection) {
        waiter.resolve(error)
        owner.shared.withLock { $0.unconfirmed -= 1 }
    }

    // MARK: - Consuming

    private func startConsumer(_ consumer: Consumer, on connection: amqp_connection_state_t) -> Bool {
        consumer.queue.withCString { queue in
            consumer.tag.withCString { tag in
                lp_consume(connection, queue, tag, Int32(consumer.prefetch), &errorBuffer, errorBuffer.count) == 0
            }
        }
    }

    private func deliver(_ connection: amqp_connection_state_t) {
        defer { lp_event_release(connection, event) }
        // An empty body comes with no pointer at all (it crashed the consumer before: `Data(bytes:)` of nil).
        let length = lp_event_body_len(event)
        let body = length == 0 ? Data() : Data(bytes: lp_event_body(event), count: length)
        var messageID = [CChar](repeating: 0, count: 256)
        lp_event_message_id(event, &messageID, messageID.count)
        var headers: [String: AMQPHeaderValue] = [:]
        var key = [CChar](repeating: 0, count: 256)
        var value = [CChar](repeating: 0, count: 1024)
        var number: Int64 = 0
        for index in 0..<lp_event_header_count(event) {
            switch lp_event_header(event, index, &key, key.count, &value, value.count, &number) {
            case 0x53: headers[string(key)] = .string(string(value))
            case 0x49: headers[string(key)] = .int(number)
            default: break
            }
        }
        let consumerTag = withUnsafeBytes(of: &event.pointee.consumer_tag) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        let delivery = Delivery(
            body: body,
            routingKey: withUnsafeBytes(of: &event.pointee.routing_key) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) },
            exchange: withUnsafeBytes(of: &event.pointee.exchange) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) },
            messageID: messageID[0] == 0 ? nil : string(messageID),
            headers: headers,
            redelivered: event.pointee.redelivered != 0,
            deliveryTag: event.pointee.delivery_tag,
            generation: generation
        )
        let consumer = consumers.first { $0.tag == consumerTag } ?? consumers.first
        consumer?.deliveries.push(delivery)
    }

    // MARK: - Connection lifecycle

    private func connect(owner: AMQPConnection) {
        let endpoint = configuration.endpoints[endpointIndex % configuration.endpoints.count]
        let timeoutMilliseconds = milliseconds(configuration.connectTimeout)
        let connection = lp_connect(
            endpoint.host, Int32(endpoint.port), endpoint.user, endpoint.password, endpoint.vhost,
            Int32(configuration.heartbeat), timeoutMilliseconds, name, &errorBuffer, errorBuffer.count
        )
        guard let connection else {
            connectFailed(errorText, endpoint: endpoint, owner: owner)
            return
        }
        if let failure = declare(topology, on: connection) {
            lp_close(connection, 0)
            connectFailed(failure, endpoint: endpoint, owner: owner)
            return
        }
        self.connection = connection
        generation += 1
        nextSequence = 1
        for consumer in consumers where !startConsumer(consumer, on: connection) {
            let reason = errorText
            lp_close(connection, 0)
            self.connection = nil
            connectFailed("basic.consume \(consumer.queue): \(reason)", endpoint: endpoint, owner: owner)
            return
        }
        logger.info(
            "connected to broker",
            metadata: ["amqp.endpoint": "\(endpoint)", "amqp.after_failures": "\(failedAttempts)"]
        )
        failedAttempts = 0
        backoff = .milliseconds(100)
        owner.shared.withLock { state in
            state.connected = true
            state.blocked = false
            state.lastError = nil
        }
    }

    private func connectFailed(_ reason: String, endpoint: AMQPConfiguration.Endpoint, owner: AMQPConnection) {
        failedAttempts += 1
        if failedAttempts == 1 || failedAttempts % 20 == 0 {
            logger.warning(
                "cannot connect to broker, retrying",
                metadata: ["amqp.endpoint": "\(endpoint)", "amqp.error": "\(reason)", "amqp.attempts": "\(failedAttempts)"]
            )
        }
        owner.shared.withLock { $0.lastError = reason }
        endpointIndex += 1
        reconnectAt = ContinuousClock.now.advanced(by: backoff)
        backoff = min(backoff * 2, .seconds(2))
    }

    private func connectionLost(reason: String, owner: AMQPConnection) {
        guard let connection else { return }
        frames.removeAll()
        lp_close(connection, 0)
        self.connection = nil
        logger.warning("lost broker connection", metadata: ["amqp.error": "\(reason)"])
        owner.shared.withLock { state in
            state.connected = false
            state.blocked = false
            state.lastError = reason
        }
        failAllPending(AMQPError(.connectionLost, reason), owner: owner)
        endpointIndex += 1
        reconnectAt = ContinuousClock.now.advanced(by: .milliseconds(100))
        backoff = .milliseconds(200)
    }

    private func finishClose(owner: AMQPConnection) {
        sendFrames(owner: owner)
        if let connection {
            lp_close(connection, 1)
            self.connection = nil
        }
        owner.shared.withLock { $0.connected = false }
        failAllPending(AMQPError(.closed, "connection closed before the broker confirmed"), owner: owner)
        let leftovers = owner.shared.withLock { state in
            let taken = state.commands
            state.commands.removeAll()
            return taken
        }
        for command in leftovers {
            switch command {
            case .publish(_, let waiter):
                fail(waiter, AMQPError(.closed, "connection \(name) is closed"), owner: owner)
            case .queueOperation(_, _, let continuation):
                continuation.resume(throwing: AMQPError(.closed, "connection \(name) is closed"))
            case .close(let continuation):
                closeWaiters.append(continuation)
            case .consume(_, _, let continuation):
                continuation.finish()
            case .ack, .nack:
                break
            }
        }
        for consumer in consumers { consumer.deliveries.finish() }
        consumers.removeAll()
        for waiter in closeWaiters { waiter.resume() }
        closeWaiters.removeAll()
        logger.debug("connection closed")
    }

    private func declare(_ topology: Topology, on connection: amqp_connection_state_t) -> String? {
        for exchange in topology.exchanges {
            let status = exchange.name.withCString { name in
                exchange.type.withCString { type in
                    lp_exchange_declare(connection, name, type, &errorBuffer, errorBuffer.count)
                }
            }
            if status != 0 { return errorText }
        }
        for queue in topology.queues {
            let status = queue.name.withCString { name in
                withOptionalCString(queue.type == .quorum ? "quorum" : nil) { type in
                    withOptionalCString(queue.deadLetterExchange) { dlx in
                        withOptionalCString(queue.deadLetterRoutingKey) { dlrk in
                            lp_queue_declare(
                                connection, name, type, dlx, dlrk,
                                Int32(queue.type == .quorum ? (queue.deliveryLimit ?? 0) : 0),
                                Int32(queue.expires.map { $0.components.seconds * 1000 } ?? 0),
                                &errorBuffer, errorBuffer.count
                            )
                        }
                    }
                }
            }
            if status != 0 { return errorText }
        }
        for binding in topology.bindings {
            let status = binding.queue.withCString { queue in
                binding.exchange.withCString { exchange in
                    binding.routingKey.withCString { key in
                        lp_queue_bind(connection, queue, exchange, key, &errorBuffer, errorBuffer.count)
                    }
                }
            }
            if status != 0 { return errorText }
        }
        return nil
    }

    private func waitForWake(owner: AMQPConnection, milliseconds: Int32) {
        var descriptor = pollfd(fd: owner.wakeFD, events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, milliseconds) > 0 {
            var value: UInt64 = 0
            _ = read(owner.wakeFD, &value, 8)
        }
    }

    private var errorText: String { string(errorBuffer) }

    private func text(of event: UnsafeMutablePointer<lp_event>) -> String {
        withUnsafeBytes(of: &event.pointee.text) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }
}

/// A duration in whole milliseconds, as the C shim takes timeouts.
private func milliseconds(_ duration: Duration) -> Int32 {
    Int32(clamping: duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
}

private func string(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

private func withOptionalCString<R>(_ value: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let value else { return body(nil) }
    return value.withCString { body($0) }
}
