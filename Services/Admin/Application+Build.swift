import AMQP
import Foundation
import Hummingbird
import LeadService
import LeadStore
import Logging
import Prometheus
import ServiceLifecycle

/// lead-admin: the read, outcome and GDPR API and the dashboard over the leads database; consumes CRM
/// outcomes (`lead.outcome`) and the live alert feed (`alert.*`).
func buildAdminApplication(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry
) throws -> some ApplicationProtocol {
    let logger = {
        var logger = Logger(label: "lead-admin")
        logger.logLevel = configuration.logLevel
        return logger
    }()
    let env = EnvironmentReader()
    let instance = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    let feedQueue = "admin.alerts.\(instance)"
    let database = Database(configuration: configuration.database, logger: logger)
    // Lead lists, lead pages and analytics may come from a read replica (`ADMIN_DATABASE_URL`); outcomes,
    // erasure, GDPR export and the outbox always use the primary. A replica lags: a lead created a moment ago
    // may not be listed yet.
    let replica = try env.string("ADMIN_DATABASE_URL").map { Database(configuration: try DatabaseConfiguration(url: $0), logger: logger) }
    let reads = replica ?? database
    let consumerConnection = AMQPConnection(
        configuration: configuration.amqp,
        name: "lead-admin-\(instance)-consume",
        topology: LeadTopology.admin(configuration.queueType, feedQueue: feedQueue),
        logger: logger
    )
    let publisherConnection = AMQPConnection(
        configuration: configuration.amqp,
        name: "lead-admin-\(instance)-publish",
        topology: LeadTopology.exchanges,
        logger: logger
    )
    // Its own connection (channel): a multiple-ack of the outcome consumer must never cover feed messages.
    let feedConnection = AMQPConnection(
        configuration: configuration.amqp,
        name: "lead-admin-\(instance)-feed",
        topology: LeadTopology.admin(configuration.queueType, feedQueue: feedQueue),
        logger: logger
    )
    let gate = StartGate()
    let outboxSignal = WakeSignal()
    let outcomes = OutcomeRecorder(client: database.client)
    let analytics = Analytics(client: reads.client, sourceCosts: try Analytics.parseCosts(env.string("SOURCE_COSTS")))
    let feed = AlertFeed(connection: feedConnection, queue: feedQueue, logger: logger)
    let leads = LeadsController(client: reads.client, outcomes: outcomes, heatHalfLifeDays: try env.double("HEAT_HALF_LIFE_DAYS", default: 14))

    let router = Router()
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: UnexpectedErrorMiddleware())
    router.addHealthRoutes(registry: registry) {
        async let databaseUp = database.isReachable(logger: logger)
        async let replicaUp = replica?.isReachable(logger: logger) ?? true
        return Readiness(checks: [
            "broker": consumerConnection.isConnected && publisherConnection.isConnected,
            "database": await databaseUp, "replica": await replicaUp, "migrated": gate.isOpen,
        ])
    }
    let api = router.group("v1").add(middleware: BearerTokenMiddleware(token: configuration.adminToken))
    leads.addRoutes(to: api)
    SessionsController(client: reads.client).addRoutes(to: api)
    AnalyticsController(analytics: analytics).addRoutes(to: api)
    ContactsController(client: database.client, outboxSignal: outboxSignal).addRoutes(to: api)
    api.get("alerts/stream") { _, _ in feed.eventStreamResponse() }
    try DashboardController(
        token: configuration.adminToken, leads: leads, analytics: analytics, feed: feed, client: reads.client
    ).addRoutes(to: router)

    var services: [any Service] = [
        database.client,
        AMQPConnectionService(consumerConnection),
        AMQPConnectionService(publisherConnection),
        AMQPConnectionService(feedConnection),
        DatabaseStartup(database: database, gate: gate, logger: logger),
        BrokerGauges([consumerConnection, publisherConnection, feedConnection]),
        OutboxRelay(
            database: configuration.database,
            rounds: configuration.outboxRelayRounds,
            connection: publisherConnection, signal: outboxSignal, gate: gate, logger: logger
        ),
        feed,
        BatchConsumer(
            connection: consumerConnection, queue: LeadTopology.adminOutcomesQueue, handler: OutcomeHandler(recorder: outcomes),
            prefetch: 100, maxBatch: 50, startGate: gate, logger: logger
        ),
    ]
    if let replica { services.insert(replica.client, at: 1) }
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.adminHost, port: configuration.adminPort), serverName: "lead-admin"),
        services: services,
        logger: logger
    )
}
