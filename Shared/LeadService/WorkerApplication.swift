import AMQP
import Foundation
import Hummingbird
import LeadStore
import Logging
import Prometheus
import ServiceLifecycle

/// What a queue worker is made of; handed to the closures that build its handler and extra services.
package struct WorkerContext: Sendable {
    package let name: String
    package let configuration: ServiceConfiguration
    package let logger: Logger
    package let database: Database
    /// Consumes the worker's queue (and publishes its dead letters).
    package let consumerConnection: AMQPConnection
    /// Publishes the outbox.
    package let publisherConnection: AMQPConnection
    /// Opens once the database is reachable and migrated.
    package let gate: StartGate
    /// Wakes the outbox relay after a commit.
    package let outboxSignal: WakeSignal
    /// Publishes outbox rows written leased (`OutboxStore.lease`) right after their commit.
    package let dispatcher: OutboxDispatcher
}

/// A queue worker (scorer, conversion, alerts): database start-up, a batch consumer, the outbox relay,
/// and `/healthz`, `/readyz`, `/metrics` on its metrics port. `directOutbox`: the handler writes its outbox
/// rows leased and hands them to `WorkerContext.dispatcher` itself, so a commit does not wake the relay (which
/// then only polls for rows whose lease ended). Services stop in reverse order: the consumer
/// first (finishing its batch), then the relay (last pass), then the connections, then the database pool.
package func buildWorkerApplication<Handler: DeliveryHandler>(
    name: String,
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry,
    metricsPort: Int,
    topology: Topology,
    queue: String,
    prefetch: Int,
    maxBatch: Int,
    directOutbox: Bool = false,
    makeHandler: (WorkerContext) -> Handler,
    extraServices: (WorkerContext) -> [any Service] = { _ in [] },
    configureRouter: (Router<BasicRequestContext>, WorkerContext) -> Void = { _, _ in }
) -> some ApplicationProtocol {
    let logger = {
        var logger = Logger(label: name)
        logger.logLevel = configuration.logLevel
        return logger
    }()
    let instance = "\(ProcessInfo.processInfo.processIdentifier)"
    let database = Database(configuration: configuration.database, logger: logger)
    let publisherConnection = AMQPConnection(
        configuration: configuration.amqp,
        name: "\(name)-\(instance)-publish",
        topology: LeadTopology.exchanges,
        logger: logger
    )
    let context = WorkerContext(
        name: name,
        configuration: configuration,
        logger: logger,
        database: database,
        consumerConnection: AMQPConnection(
            configuration: configuration.amqp,
            name: "\(name)-\(instance)-consume",
            topology: topology,
            logger: logger
        ),
        publisherConnection: publisherConnection,
        gate: StartGate(),
        outboxSignal: WakeSignal(),
        dispatcher: OutboxDispatcher(connection: publisherConnection, client: database.client, logger: logger)
    )
    let consumer = BatchConsumer(
        connection: context.consumerConnection,
        queue: queue,
        handler: makeHandler(context),
        prefetch: prefetch,
        maxBatch: maxBatch,
        startGate: context.gate,
        logger: logger,
        onCommitted: { [signal = context.outboxSignal] in if !directOutbox { signal.notify() } }
    )

    let router = Router()
    router.addHealthRoutes(registry: registry) {
        async let databaseUp = context.database.isReachable(logger: logger)
        return Readiness(checks: [
            "broker": context.consumerConnection.isConnected && context.publisherConnection.isConnected,
            "database": await databaseUp,
            "migrated": context.gate.isOpen,
        ])
    }
    configureRouter(router, context)

    var services: [any Service] = [
        context.database.client,
        AMQPConnectionService(context.consumerConnection),
        AMQPConnectionService(context.publisherConnection),
        DatabaseStartup(database: context.database, gate: context.gate, logger: logger),
        BrokerGauges([context.consumerConnection, context.publisherConnection]),
        OutboxRelay(
            database: configuration.database,
            rounds: configuration.outboxRelayRounds,
            connection: context.publisherConnection,
            signal: context.outboxSignal,
            gate: context.gate,
            logger: logger
        ),
        context.dispatcher,
    ]
    services += extraServices(context)
    services.append(consumer)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.metricsHost, port: metricsPort), serverName: name),
        services: services,
        logger: logger
    )
}
