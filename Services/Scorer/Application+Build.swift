import Hummingbird
import LeadService
import LeadStore
import Prometheus

/// lead-scorer: consumes `scorer.interactions`, scores, writes interactions and leads, and publishes its outbox
/// rows itself after each commit (the relay takes those whose lease ended).
/// Copies are competing consumers; start more to scale.
func buildScorerApplication(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry
) throws -> some ApplicationProtocol {
    let env = EnvironmentReader()
    let rules = RulesCache()
    return buildWorkerApplication(
        name: "lead-scorer",
        configuration: configuration,
        registry: registry,
        metricsPort: configuration.scorerMetricsPort,
        topology: LeadTopology.scorer(configuration.queueType),
        queue: LeadTopology.scorerQueue,
        prefetch: try env.int("SCORER_PREFETCH", default: 1000),
        maxBatch: try env.int("SCORER_BATCH", default: 500),
        directOutbox: true,
        makeHandler: { context in
            ScoringHandler(
                rules: rules,
                store: InteractionStore(connection: DedicatedConnection(configuration: configuration.database, logger: context.logger)),
                dispatcher: context.dispatcher
            )
        },
        extraServices: { context in
            [
                RulesRefresher(
                    cache: rules,
                    store: ScoringRulesStore(client: context.database.client),
                    gate: context.gate,
                    logger: context.logger
                )
            ]
        }
    )
}
