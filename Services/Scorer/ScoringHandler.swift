import Foundation
import AMQP
import LeadCore
import LeadService
import LeadStore
import Logging
import Metrics

/// Scores each interaction as it is decoded (while the previous batch is in its transaction), then persists a
/// batch with its lead effects in one transaction and hands its committed outbox rows to the dispatcher.
struct ScoringHandler: DeliveryHandler {
    let rules: RulesCache
    let store: InteractionStore
    let dispatcher: OutboxDispatcher
    /// Events that waited for a second transaction because another scorer's batch held their session or contact.
    let deferred = Counter(label: "scorer_events_deferred_total")

    func decode(_ delivery: Delivery) throws(PermanentFailure) -> InteractionStore.ScoredInteraction {
        let event: InteractionEvent
        do {
            event = try InteractionEvent.decode(delivery.body)
        } catch {
            throw PermanentFailure("not an interaction event: \(error)")
        }
        return .init(event: event, score: rules.scorer.score(event), lead: LeadRules.candidate(for: event))
    }

    func shutdown() async {
        await store.close()
    }

    func handle(_ items: [InteractionStore.ScoredInteraction], logger: Logger) async throws {
        var seen = Set<UUIDKey>()
        seen.reserveCapacity(items.count)
        let batch = items.filter { seen.insert(UUIDKey($0.event.eventID)).inserted }
        let result = try await store.process(batch, logger: logger) { [dispatcher] in dispatcher.dispatch($0) }
        if result.deferred > 0 {
            deferred.increment(by: result.deferred)
        }
        if result.leadsCreated > 0 || result.duplicates > 0 {
            logger.debug(
                "batch committed",
                metadata: [
                    "batch.size": "\(batch.count)", "leads.created": "\(result.leadsCreated)",
                    "leads.updated": "\(result.leadsUpdated)", "duplicates": "\(result.duplicates)",
                    "deferred": "\(result.deferred)",
                ]
            )
        }
    }
}

/// `UUID` as a set key without Foundation's bridging cost.
struct UUIDKey: Hashable {
    let high: UInt64
    let low: UInt64

    init(_ uuid: UUID) {
        let bytes = uuid.uuid
        high = withUnsafeBytes(of: (bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5, bytes.6, bytes.7)) { $0.load(as: UInt64.self) }
        low = withUnsafeBytes(of: (bytes.8, bytes.9, bytes.10, bytes.11, bytes.12, bytes.13, bytes.14, bytes.15)) { $0.load(as: UInt64.self) }
    }
}
