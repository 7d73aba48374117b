/// Exchanges, queues and bindings a process declares on every (re)connect. Declarations are idempotent.
package struct Topology: Sendable {
    package struct Exchange: Sendable {
        package var name: String
        package var type: String = "topic"
        package init(name: String, type: String = "topic") {
            self.name = name
            self.type = type
        }
    }

    package enum QueueType: String, Sendable {
        case quorum, classic
    }

    package struct Queue: Sendable {
        package var name: String
        package var type: QueueType
        package var deadLetterExchange: String?
        package var deadLetterRoutingKey: String?
        /// Quorum queues only: after this many deliveries the broker dead-letters the message itself.
        package var deliveryLimit: Int?
        /// The broker deletes the queue once it has had no consumer for this long (per-process queues).
        package var expires: Duration?

        package init(
            name: String,
            type: QueueType,
            deadLetterExchange: String? = nil,
            deadLetterRoutingKey: String? = nil,
            deliveryLimit: Int? = nil,
            expires: Duration? = nil
        ) {
            self.name = name
            self.type = type
            self.deadLetterExchange = deadLetterExchange
            self.deadLetterRoutingKey = deadLetterRoutingKey
            self.deliveryLimit = deliveryLimit
            self.expires = expires
        }
    }

    package struct Binding: Sendable {
        package var queue: String
        package var exchange: String
        package var routingKey: String
        package init(queue: String, exchange: String, routingKey: String) {
            self.queue = queue
            self.exchange = exchange
            self.routingKey = routingKey
        }
    }

    package var exchanges: [Exchange] = []
    package var queues: [Queue] = []
    package var bindings: [Binding] = []

    package init(exchanges: [Exchange] = [], queues: [Queue] = [], bindings: [Binding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }

    package func merging(_ other: Topology) -> Topology {
        Topology(
            exchanges: exchanges + other.exchanges,
            queues: queues + other.queues,
            bindings: bindings + other.bindings
        )
    }
}
