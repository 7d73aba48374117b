import AMQP
import Foundation
import Hummingbird
import LeadService
import LeadStore
import Logging
import Prometheus
import ServiceLifecycle

/// lead-scorer: consumes `scorer.interactions`, scores, writes interactions and leads, relays the outbox.
/// Copies are competing consumers; start more to scale.
func buildScorerApplication(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry
) throws -> some ApplicationProtocol {
    let logger = {
        var logger = Logger(label: "lead-scorer")
        logger.logLevel = configuration.logLevel
        return logger
    }()
    let env = EnvironmentReader()
    let instance = "\(ProcessInfo.processInfo.processIdentifier)"
    let database = Database(configuration: configuration.database, logger: logger)
    let consumerConnection = AMQPConnection(
        configuration: configuration.amqp,
        name: "lead-scorer-\(instance)-consume",
        topology: LeadTopology.scorer(configuration.queueType),
        logger: logger
    )
    let publisherConnection = AMQPConnection(
        configuration: configuration.amqp,
        name: "lead-scorer-\(instance)-publish",
        topology: LeadTopology.exchanges,
        logger: logger
    )
    let gate = StartGate()
    let outboxSignal = WakeSignal()
    let rules = RulesCache()
    let handler = ScoringHandler(rules: rules, store: InteractionStore(client: database.client))
    let consumer = BatchConsumer(
        connection: consumerConnection,
        queue: LeadTopology.scorerQueue,
        handler: handler,
        prefetch: try env.int("SCORER_PREFETCH", default: 1000),
        maxBatch: try env.int("SCORER_BATCH", default: 500),
        startGate: gate,
        logger: logger,
        onCommitted: { outboxSignal.notify() }
    )

    let router = Router()
    router.addHealthRoutes(registry: registry) {
        async let databaseUp = database.isReachable(logger: logger)
        return Readiness(checks: [
            "broker": consumerConnection.isConnected && publisherConnection.isConnected,
            "database": await databaseUp,
            "migrated": gate.isOpen,
        ])
    }
    let services: [any Service] = [
        database.client,
        AMQPConnectionService(consumerConnection),
        AMQPConnectionService(publisherConnection),
        DatabaseStartup(database: database, gate: gate, logger: logger),
        RulesRefresher(cache: rules, store: ScoringRulesStore(client: database.client), gate: gate, logger: logger),
        OutboxRelay(
            store: OutboxStore(client: database.client),
            connection: publisherConnection,
            signal: outboxSignal,
            gate: gate,
            logger: logger
        ),
        consumer,
    ]
    return Application(
        router: router,
        configuration: .init(
            address: .hostname(configuration.metricsHost, port: configuration.scorerMetricsPort),
            serverName: "lead-scorer"
        ),
        services: services,
        logger: logger
    )
}
