import AMQP
import Hummingbird
import LeadService
import LeadStore
import Logging
import Prometheus
import ServiceLifecycle

/// lead-admin: the read and GDPR API and the dashboard over the leads database.
func buildAdminApplication(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry
) -> some ApplicationProtocol {
    let logger = {
        var logger = Logger(label: "lead-admin")
        logger.logLevel = configuration.logLevel
        return logger
    }()
    let database = Database(configuration: configuration.database, logger: logger)
    let connection = AMQPConnection(
        configuration: configuration.amqp,
        name: "lead-admin",
        topology: LeadTopology.exchanges,
        logger: logger
    )
    let gate = StartGate()

    let router = Router()
    router.add(middleware: MetricsMiddleware())
    router.addHealthRoutes(registry: registry) {
        async let databaseUp = database.isReachable(logger: logger)
        return Readiness(checks: ["broker": connection.isConnected, "database": await databaseUp, "migrated": gate.isOpen])
    }
    let api = router.group("v1").add(middleware: BearerTokenMiddleware(token: configuration.adminToken))
    LeadsController(client: database.client).addRoutes(to: api)
    SessionsController(client: database.client).addRoutes(to: api)

    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.adminHost, port: configuration.adminPort), serverName: "lead-admin"),
        services: [
            database.client,
            AMQPConnectionService(connection),
            DatabaseStartup(database: database, gate: gate, logger: logger),
        ],
        logger: logger
    )
}
