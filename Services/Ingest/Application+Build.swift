import AMQP
import Hummingbird
import LeadService
import LeadStore
import Logging
import Prometheus
import ServiceLifecycle

/// lead-ingest: the HTTP endpoint the web tier posts interactions to (CONTRACT section 3).
func buildIngestApplication(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry
) throws -> some ApplicationProtocol {
    let logger = {
        var logger = Logger(label: "lead-ingest")
        logger.logLevel = configuration.logLevel
        return logger
    }()
    // A request waits at most this long for the broker's confirm (a resource alarm holds confirms back),
    // then gets 503; a late confirm is harmless, the client's retry has the same event_id.
    let env = EnvironmentReader()
    var amqp = configuration.amqp
    amqp.confirmTimeout = .milliseconds(try env.int("INGEST_CONFIRM_TIMEOUT_MS", default: 5000))
    // One connection by default: measured in `make bench`, one shared connection cost the broker ~10 % and
    // lead-ingest ~13 % less CPU a request than two (larger batches per channel), for ~13 % more requests/s.
    let connectionCount = try env.int("INGEST_BROKER_CONNECTIONS", default: 1)
    guard (1...16).contains(connectionCount) else {
        throw ConfigurationError("INGEST_BROKER_CONNECTIONS must be 1 to 16, got \(connectionCount)")
    }
    let connections = (1...connectionCount).map { index in
        AMQPConnection(
            configuration: amqp,
            name: "lead-ingest-\(index)",
            topology: LeadTopology.ingest(configuration.queueType),
            logger: logger
        )
    }
    let publisher = EventPublisher(connections: connections)
    let database = Database(configuration: configuration.database, logger: logger)

    let router = Router()
    router.add(middleware: RequestMetricsMiddleware())
    router.add(middleware: UnexpectedErrorMiddleware())
    router.addHealthRoutes(registry: registry) {
        // The database is reported but not required: events wait in RabbitMQ while it is down.
        async let databaseUp = database.isReachable(logger: logger)
        return Readiness(checks: ["broker": publisher.isConnected, "database": await databaseUp], required: ["broker"])
    }
    let web = try WebKitConfiguration(environment: env, secretKeys: configuration.ingestAPIKeys)
    let authenticator = IngestAuthenticator(secretKeys: configuration.ingestAPIKeys, web: web)
    let tokens = SessionTokens(secret: web.sessionSecret)
    router.add(middleware: CORSMiddleware(authenticator: authenticator))
    InteractionsController(publisher: publisher, authenticator: authenticator, tokens: tokens)
        .addRoutes(to: router.group("v1/interactions"))
    WebRoutes(authenticator: authenticator, tokens: tokens, client: database.client).addRoutes(to: router)

    var services: [any Service] = [database.client]
    services += connections.map { AMQPConnectionService($0) }
    services.append(BrokerGauges(connections))
    services.append(DatabaseStartup(database: database, gate: StartGate(), fatal: false, logger: logger))
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.ingestHost, port: configuration.ingestPort), serverName: "lead-ingest"),
        services: services,
        logger: logger
    )
}
