import AMQP
import Foundation
import Hummingbird
import LeadCore
import LeadService
import LeadStore
import Logging
import NIOCore
import Prometheus

/// lead-alerts: `lead.scored` and `conversion.prompt` become alerts (stored once, published through the outbox)
/// and signed webhooks (retried from the database, one worker per endpoint).
func buildAlertsApplication(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry
) throws -> some ApplicationProtocol {
    let env = EnvironmentReader()
    let rules = AlertRules(
        highScoreThreshold: configuration.highScoreThreshold,
        opportunityThreshold: try env.int("OPPORTUNITY_THRESHOLD", default: 85)
    )
    let schedule = RetrySchedule(
        base: .milliseconds(try env.int("WEBHOOK_RETRY_BASE_MS", default: 5000)),
        cap: .seconds(try env.int("WEBHOOK_RETRY_CAP_SECONDS", default: 3600)),
        giveUpAfter: .seconds(try env.int("WEBHOOK_RETRY_HOURS", default: 24) * 3600)
    )
    let webhookTimeout = try env.int("WEBHOOK_TIMEOUT_SECONDS", default: 10)
    let webhookConcurrency = try env.int("WEBHOOK_CONCURRENCY", default: 16)
    let signer = try configuration.webhookSecret.map { try WebhookSigner(secret: $0) }
    if !configuration.webhookURLs.isEmpty, signer == nil {
        throw ConfigurationError("ALERT_WEBHOOK_URLS is set but ALERT_WEBHOOK_SECRET is empty: webhooks must be signed")
    }
    let inbox = DeliveryInbox(urls: configuration.webhookURLs, capacity: max(1, webhookConcurrency) * 8)
    let requestTimeout = TimeAmount.seconds(Int64(max(1, webhookTimeout)))
    return buildWorkerApplication(
        name: "lead-alerts",
        configuration: configuration,
        registry: registry,
        metricsPort: configuration.alertsMetricsPort,
        topology: LeadTopology.alerts(configuration.queueType),
        queue: LeadTopology.alertsQueue,
        prefetch: try env.int("ALERTS_PREFETCH", default: 500),
        maxBatch: try env.int("ALERTS_BATCH", default: 200),
        directOutbox: true,
        makeHandler: { context in
            AlertHandler(
                rules: rules,
                webhookURLs: configuration.webhookURLs,
                connection: DedicatedConnection(configuration: configuration.database, logger: context.logger),
                dispatcher: context.dispatcher,
                inbox: inbox,
                deliveryLease: WebhookDeliverer.lease(requestTimeout: requestTimeout) + DeliveryInbox.maxAge
            )
        },
        extraServices: { context in
            guard let signer, !configuration.webhookURLs.isEmpty else { return [] }
            return [
                WebhookDeliverer(
                    urls: configuration.webhookURLs, signer: signer, schedule: schedule, client: context.database.client,
                    inbox: inbox, gate: context.gate, logger: context.logger,
                    concurrency: max(1, webhookConcurrency), requestTimeout: requestTimeout
                )
            ]
        }
    )
}
