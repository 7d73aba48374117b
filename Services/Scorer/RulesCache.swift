import LeadCore
import LeadService
import LeadStore
import Logging
import ServiceLifecycle
import Synchronization

/// The scoring rules in effect, refreshed from `lead_scoring_rules` by `RulesRefresher`.
final class RulesCache: Sendable {
    private let current = Mutex(InteractionScorer(rules: .defaults))

    var scorer: InteractionScorer { current.withLock { $0 } }

    func update(_ rules: ScoringRules) -> Bool {
        current.withLock { scorer in
            guard scorer.rules != rules else { return false }
            scorer.rules = rules
            return true
        }
    }
}

/// Re-reads the rules table every `interval` (30 s: a change applies within a minute, no restart).
struct RulesRefresher: Service, CustomStringConvertible {
    let cache: RulesCache
    let store: ScoringRulesStore
    let gate: StartGate
    var interval: Duration = .seconds(30)
    let logger: Logger

    var description: String { "RulesRefresher" }

    func run() async throws {
        guard await gate.wait() else { return }
        while !Task.isShuttingDownGracefully {
            do {
                let rules = try await store.load(logger: logger)
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
