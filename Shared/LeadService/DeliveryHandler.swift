import AMQP
import Logging

/// What a consumer does with its messages: decode each one, then handle a batch in one transaction.
package protocol DeliveryHandler: Sendable {
    associatedtype Item: Sendable

    /// Decodes one message; throw `PermanentFailure` for one that can never be processed (it is dead-lettered).
    func decode(_ delivery: Delivery) throws(PermanentFailure) -> Item

    /// Handles a batch atomically (one transaction). Throwing fails the whole batch; the consumer then
    /// retries it, or splits it to find the message at fault.
    func handle(_ items: [Item], logger: Logger) async throws

    /// Releases what the handler holds (its database connection) once the consumer has stopped.
    func shutdown() async
}

extension DeliveryHandler {
    package func shutdown() async {}
}

/// A message that cannot be processed, ever: bad JSON, an invalid event.
package struct PermanentFailure: Error, CustomStringConvertible {
    package var reason: String

    package init(_ reason: String) {
        self.reason = reason
    }

    package var description: String { reason }
}
