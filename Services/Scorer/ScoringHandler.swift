import Foundation
import AMQP
import LeadCore
import LeadService
import LeadStore
import Logging

/// Scores a batch of interactions and persists them with their lead effects in one transaction.
struct ScoringHandler: DeliveryHandler {
    let rules: RulesCache
    let store: InteractionStore

    func decode(_ delivery: Delivery) throws(PermanentFailure) -> InteractionEvent {
        do {
            return try InteractionEvent.decode(delivery.body)
        } catch {
            throw PermanentFailure("not an interaction event: \(error)")
        }
    }

    func shutdown() async {
        await store.close()
    }

    func handle(_ events: [InteractionEvent], logger: Logger) async throws {
        let scorer = rules.scorer
        var seen = Set<UUIDKey>()
        var batch: [InteractionStore.ScoredInteraction] = []
        batch.reserveCapacity(events.count)
        for event in events where seen.insert(UUIDKey(event.eventID)).inserted {
            batch.append(.init(event: event, score: scorer.score(event), lead: LeadRules.candidate(for: event)))
        }
        let result = try await store.process(batch, logger: logger)
        if result.leadsCreated > 0 || result.duplicates > 0 {
            logger.debug(
                "batch committed",
                metadata: [
                    "batch.size": "\(batch.count)", "leads.created": "\(result.leadsCreated)",
                    "leads.updated": "\(result.leadsUpdated)", "duplicates": "\(result.duplicates)",
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
