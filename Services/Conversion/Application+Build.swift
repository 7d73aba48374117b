import AMQP
import Foundation
import Hummingbird
import LeadCore
import LeadService
import LeadStore
import Logging
import Prometheus

/// lead-conversion: tracks sessions from `conversion.interactions`, decides when to prompt for contact
/// details, publishes `conversion.prompt` through the outbox (itself, right after the commit; the relay takes
/// what it could not publish).
func buildConversionApplication(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry
) throws -> some ApplicationProtocol {
    let env = EnvironmentReader()
    let policy = try PromptPolicy(environment: env)
    let window = Duration.seconds(try env.int("CONVERSION_WINDOW_HOURS", default: 24) * 3600)
    let rules = RulesCache()
    return buildWorkerApplication(
        name: "lead-conversion",
        configuration: configuration,
        registry: registry,
        metricsPort: configuration.conversionMetricsPort,
        topology: LeadTopology.conversion(configuration.queueType),
        queue: LeadTopology.conversionQueue,
        prefetch: try env.int("CONVERSION_PREFETCH", default: 1000),
        maxBatch: try env.int("CONVERSION_BATCH", default: 500),
        directOutbox: true,
        makeHandler: { context in
            SessionHandler(
                policy: policy,
                rules: rules,
                connection: DedicatedConnection(configuration: configuration.database, logger: context.logger),
                dispatcher: context.dispatcher
            )
        },
        extraServices: { context in
            [
                RulesRefresher(cache: rules, store: ScoringRulesStore(client: context.database.client), gate: context.gate, logger: context.logger),
                PromptExpiry(client: context.database.client, window: window, gate: context.gate, logger: context.logger),
            ]
        }
    )
}

extension PromptPolicy {
    /// The contract's rules, each overridable: `PROMPT_THRESHOLD`, `PROMPT_THRESHOLD_B`, `PROMPT_COOLDOWN_MINUTES`,
    /// `PROMPT_MAX`, `PROMPT_SUPPRESS_HOURS`.
    init(environment env: EnvironmentReader) throws {
        self.init()
        threshold = try env.int("PROMPT_THRESHOLD", default: threshold)
        thresholdVariantB = try env.int("PROMPT_THRESHOLD_B", default: thresholdVariantB)
        cooldown = TimeInterval(try env.int("PROMPT_COOLDOWN_MINUTES", default: Int(cooldown / 60)) * 60)
        maxPrompts = try env.int("PROMPT_MAX", default: maxPrompts)
        suppression = TimeInterval(try env.int("PROMPT_SUPPRESS_HOURS", default: Int(suppression / 3600)) * 3600)
    }
}
