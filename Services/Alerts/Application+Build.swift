import AMQP
import Foundation
import Hummingbird
import LeadCore
import LeadService
import Logging
import Prometheus

/// lead-alerts: turns `lead.scored` and `conversion.prompt` into alerts.
func buildAlertsApplication(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry
) throws -> some ApplicationProtocol {
    let env = EnvironmentReader()
    return buildWorkerApplication(
        name: "lead-alerts",
        configuration: configuration,
        registry: registry,
        metricsPort: configuration.alertsMetricsPort,
        topology: LeadTopology.alerts(configuration.queueType),
        queue: LeadTopology.alertsQueue,
        prefetch: try env.int("ALERTS_PREFETCH", default: 500),
        maxBatch: try env.int("ALERTS_BATCH", default: 200),
        makeHandler: { _ in AlertHandler() }
    )
}

/// Placeholder until alerts land: checks each message is JSON and acknowledges it.
struct AlertHandler: DeliveryHandler {
    func decode(_ delivery: Delivery) throws(PermanentFailure) -> JSONValue {
        do {
            return try JSONParser.parse(delivery.body)
        } catch {
            throw PermanentFailure("not JSON: \(error)")
        }
    }

    func handle(_ messages: [JSONValue], logger: Logger) async throws {}
}
