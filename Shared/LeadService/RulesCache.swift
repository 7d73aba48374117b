import LeadCore
import LeadStore
import Logging
import ServiceLifecycle
import Synchronization

/// The scoring rules in effect, refreshed from `lead_scoring_rules` by `RulesRefresher`.
package final class RulesCache: Sendable {
    private let current = Mutex(InteractionScorer(rules: .defaults))

    package init() {}

    package var scorer: InteractionScorer { current.withLock { $0 } }

    package func update(_ rules: ScoringRules) -> Bool {
        current.withLock { scorer in
            guard scorer.rules != rules else { return false }
            scorer.rules = rules
            return true
        }
    }
}

/// Re-reads the rules table every `interval` (30 s: a change applies within a minute, no restart).
package struct RulesRefresher: Service, CustomStringConvertible {
    let cache: RulesCache
    let store: ScoringRulesStore
    let gate: StartGate
    let interval: Duration
    let logger: Logger

    package init(cache: RulesCache, store: ScoringRulesStore, gate: StartGate, interval: Duration = .seconds(30), logger: Logger) {
        self.cache = cache
        self.store = store
        self.gate = gate
        self.interval = interval
        self.logger = logger
    }

    package var description: String { "RulesRefresher" }

    package func run() async throws {
        guard await gate.wait() else { return }
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                // Bounded: a pool query sent while the database went away can stay unanswered, and the refresher
                // must neither stop refreshing nor hold up the service's shutdown for it.
                let rules = try await withAbandonableDeadline(.seconds(10)) { [store, logger] in try await store.load(logger: logger) }
                if cache.update(rules) {
                    logger.info("scoring rules loaded", metadata: ["rules": "\(rules.points.count)"])
                }
            } catch {
                logger.warning(
                    "cannot read scoring rules; keeping the last ones",
                    metadata: ["error": "\(String(reflecting: error))"]
                )
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
