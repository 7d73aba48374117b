import AMQP
import Foundation
import Hummingbird
import LeadCore
import LeadService
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The live alert feed: `alert.*` messages from this process's own queue, kept (last 50) and fanned out to
/// Server-Sent Events clients.
final class AlertFeed: Service, Sendable, CustomStringConvertible {
    private struct State {
        var recent: [JSONValue] = []
        var subscribers: [UUID: AsyncStream<JSONValue>.Continuation] = [:]
    }

    let connection: AMQPConnection
    let queue: String
    let logger: Logger
    private let state = Mutex(State())
    static let keep = 50

    init(connection: AMQPConnection, queue: String, logger: Logger) {
        self.connection = connection
        self.queue = queue
        self.logger = logger
    }

    var description: String { "AlertFeed" }

    var recent: [JSONValue] { state.withLock { $0.recent } }

    func run() async throws {
        let deliveries = connection.consume(queue: queue, prefetch: 200)
        await withGracefulShutdownHandler {
            while let batch = await deliveries.nextBatch(max: 200) {
                for delivery in batch {
                    guard case .object(var alert)? = try? JSONParser.parse(delivery.body) else { continue }
                    alert["kind"] = .string(String(delivery.routingKey.dropFirst("alert.".count)))
                    publish(.object(alert))
                }
                if let last = batch.last { connection.ack(last, multiple: true) }
            }
        } onGracefulShutdown: {
            deliveries.interrupt()
        }
        state.withLock { state in
            for continuation in state.subscribers.values { continuation.finish() }
            state.subscribers.removeAll()
        }
    }

    private func publish(_ alert: JSONValue) {
        let subscribers = state.withLock { state in
            state.recent.append(alert)
            if state.recent.count > Self.keep { state.recent.removeFirst(state.recent.count - Self.keep) }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.yield(alert) }
    }

    /// A stream of new alerts for one client, ended when the client goes away.
    func subscribe() -> AsyncStream<JSONValue> {
        let id = UUID.random()
        let (stream, continuation) = AsyncStream.makeStream(of: JSONValue.self, bufferingPolicy: .bufferingNewest(100))
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        state.withLock { $0.subscribers[id] = continuation }
        return stream
    }

    /// `text/event-stream`: the recent alerts, then each new one, with a comment every 15 s to keep proxies awake.
    func eventStreamResponse() -> Response {
        let stream = subscribe()
        let recent = self.recent
        let body = ResponseBody { writer in
            for alert in recent { try await writer.write(ByteBuffer(string: "event: alert\ndata: \(JSONWriter.string(alert))\n\n")) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                let (ticks, tick) = AsyncStream.makeStream(of: JSONValue?.self)
                group.addTask {
                    for await alert in stream { tick.yield(alert) }
                    tick.finish()
                }
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: .seconds(15))
                        tick.yield(nil)
                    }
                }
                for await item in ticks {
                    if let alert = item {
                        try await writer.write(ByteBuffer(string: "event: alert\ndata: \(JSONWriter.string(alert))\n\n"))
                    } else {
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    }
                }
                group.cancelAll()
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: body
        )
    }
}
