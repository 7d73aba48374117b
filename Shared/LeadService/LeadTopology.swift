import AMQP

/// Exchange and queue names of CONTRACT section 4, and what each service declares.
package enum LeadTopology {
    package static let interactionsExchange = "leads.interactions"
    package static let eventsExchange = "leads.events"
    /// Direct exchange for dead letters: routing key = the source queue's name.
    package static let deadLetterExchange = "leads.dead"

    package static let scorerQueue = "scorer.interactions"
    package static let conversionQueue = "conversion.interactions"
    package static let alertsQueue = "alerts.events"
    package static let adminOutcomesQueue = "admin.outcomes"

    /// Deliveries after which the broker itself dead-letters a message (quorum queues).
    package static let deliveryLimit = 5

    package static func deadQueue(for queue: String) -> String { "\(queue).dead" }

    /// The exchanges every service may publish to.
    package static var exchanges: Topology {
        Topology(exchanges: [
            .init(name: interactionsExchange),
            .init(name: eventsExchange),
            .init(name: deadLetterExchange, type: "direct"),
        ])
    }

    /// A work queue with its dead-letter queue, bound to `routingKeys` on `exchange`.
    package static func workQueue(
        _ name: String,
        type: Topology.QueueType,
        exchange: String,
        routingKeys: [String]
    ) -> Topology {
        let dead = deadQueue(for: name)
        return Topology(
            queues: [
                .init(
                    name: name,
                    type: type,
                    deadLetterExchange: deadLetterExchange,
                    deadLetterRoutingKey: name,
                    deliveryLimit: deliveryLimit
                ),
                .init(name: dead, type: type),
            ],
            bindings: routingKeys.map { .init(queue: name, exchange: exchange, routingKey: $0) } + [
                .init(queue: dead, exchange: deadLetterExchange, routingKey: name)
            ]
        )
    }

    package static func scorer(_ type: Topology.QueueType) -> Topology {
        exchanges.merging(workQueue(scorerQueue, type: type, exchange: interactionsExchange, routingKeys: ["interaction.#"]))
    }

    package static func conversion(_ type: Topology.QueueType) -> Topology {
        exchanges.merging(
            workQueue(conversionQueue, type: type, exchange: interactionsExchange, routingKeys: ["interaction.#"])
        )
    }

    package static func alerts(_ type: Topology.QueueType) -> Topology {
        exchanges.merging(
            workQueue(alertsQueue, type: type, exchange: eventsExchange, routingKeys: ["lead.scored", "conversion.prompt"])
        )
    }

    /// lead-admin: CRM outcomes (a work queue), and this process's own live alert feed (deleted a minute after
    /// the process is gone).
    package static func admin(_ type: Topology.QueueType, feedQueue: String) -> Topology {
        exchanges
            .merging(workQueue(adminOutcomesQueue, type: type, exchange: eventsExchange, routingKeys: ["lead.outcome"]))
            .merging(Topology(
                queues: [.init(name: feedQueue, type: .classic, expires: .seconds(60))],
                bindings: [.init(queue: feedQueue, exchange: eventsExchange, routingKey: "alert.*")]
            ))
    }

    /// Ingest declares the consumer queues too, so events accepted before any worker ever started are kept.
    package static func ingest(_ type: Topology.QueueType) -> Topology {
        scorer(type).merging(conversion(type))
    }
}
