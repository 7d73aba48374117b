/// A broker operation that failed, with the broker's or the library's reason.
package struct AMQPError: Error, CustomStringConvertible, Equatable {
    package enum Code: String, Sendable {
        /// `AMQP_URL` cannot be parsed.
        case invalidURL
        /// No connection to the broker right now (it is down, or we are reconnecting).
        case notConnected
        /// The connection was lost before the broker confirmed the message: it may or may not have arrived.
        case connectionLost
        /// The broker refused the message (basic.nack).
        case nacked
        /// The broker did not confirm in time.
        case confirmTimeout
        /// The broker raised a resource alarm (connection.blocked): publishing is paused.
        case blocked
        /// Too many unconfirmed messages on this connection.
        case overloaded
        /// A declaration or another RPC failed; the message has the broker's reply text.
        case operationFailed
        /// The connection was closed by this process.
        case closed
    }

    package var code: Code
    package var message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { "AMQP \(code.rawValue): \(message)" }

    /// Whether the caller may try again later (a 503 at an HTTP edge).
    package var isTransient: Bool { code != .invalidURL }
}
