import AMQP
import Hummingbird
import LeadCore
import LeadService
import Logging
import Prometheus

/// lead-conversion: tracks sessions from `conversion.interactions` and decides when to prompt.
func buildConversionApplication(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry
) throws -> some ApplicationProtocol {
    let env = EnvironmentReader()
    return buildWorkerApplication(
        name: "lead-conversion",
        configuration: configuration,
        registry: registry,
        metricsPort: configuration.conversionMetricsPort,
        topology: LeadTopology.conversion(configuration.queueType),
        queue: LeadTopology.conversionQueue,
        prefetch: try env.int("CONVERSION_PREFETCH", default: 1000),
        maxBatch: try env.int("CONVERSION_BATCH", default: 500),
        makeHandler: { _ in SessionHandler() }
    )
}

/// Placeholder until progressive profiling lands: validates and acknowledges interactions.
struct SessionHandler: DeliveryHandler {
    func decode(_ delivery: Delivery) throws(PermanentFailure) -> InteractionEvent {
        do {
            return try InteractionEvent.decode(delivery.body)
        } catch {
            throw PermanentFailure("not an interaction event: \(error)")
        }
    }

    func handle(_ events: [InteractionEvent], logger: Logger) async throws {}
}
