import Foundation

/// A header value on a message: the two kinds this project reads and writes.
package enum AMQPHeaderValue: Sendable, Equatable {
    case string(String)
    case int(Int64)

    package var intValue: Int64? {
        switch self {
        case .int(let value): value
        case .string(let text): Int64(text)
        }
    }

    package var stringValue: String {
        switch self {
        case .int(let value): String(value)
        case .string(let text): text
        }
    }
}

/// A message to publish. Persistent and `application/json` unless told otherwise.
package struct OutgoingMessage: Sendable {
    package var exchange: String
    package var routingKey: String
    package var body: Data
    package var messageID: String?
    package var contentType: String? = "application/json"
    package var persistent: Bool = true
    package var headers: [String: AMQPHeaderValue] = [:]

    package init(
        exchange: String,
        routingKey: String,
        body: Data,
        messageID: String?,
        headers: [String: AMQPHeaderValue] = [:]
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.messageID = messageID
        self.headers = headers
    }

    /// Headers packed for the C shim: key NUL kind+value NUL, per header.
    var packedHeaders: [CChar] {
        var packed: [CChar] = []
        for (key, value) in headers.sorted(by: { $0.key < $1.key }) {
            packed.append(contentsOf: key.utf8CString)
            switch value {
            case .int(let number): packed.append(contentsOf: "I\(number)".utf8CString)
            case .string(let text): packed.append(contentsOf: "S\(text)".utf8CString)
            }
        }
        packed.append(0)
        return packed
    }
}

/// A message received from a queue. Acknowledge it through the connection that delivered it.
package struct Delivery: Sendable {
    package var body: Data
    package var routingKey: String
    package var exchange: String
    package var messageID: String?
    package var headers: [String: AMQPHeaderValue]
    package var redelivered: Bool
    package var deliveryTag: UInt64
    /// Which connection incarnation delivered it; an ack for an older one is dropped (the broker redelivers).
    package var generation: UInt64

    /// How many times the broker has handed this message out before (quorum queues count it for us;
    /// our own retry header counts republished attempts).
    package var previousAttempts: Int {
        let quorum = Int(headers["x-delivery-count"]?.intValue ?? 0)
        let ours = Int(headers["x-attempts"]?.intValue ?? 0)
        return max(quorum, ours)
    }
}
