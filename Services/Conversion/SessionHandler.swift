import AMQP
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging
import Metrics

/// Folds a batch of interactions into their sessions and records the decisions, in one transaction.
/// Events already applied (redelivery, replay) are skipped; sessions are locked, so several workers agree.
struct SessionHandler: DeliveryHandler {
    let policy: PromptPolicy
    let rules: RulesCache
    let connection: DedicatedConnection
    let dispatcher: OutboxDispatcher
    private let promptsCounter = Counter(label: "conversion_prompts_total")
    private let conversionsCounter = Counter(label: "conversion_prompts_converted_total")

    init(policy: PromptPolicy, rules: RulesCache, connection: DedicatedConnection, dispatcher: OutboxDispatcher) {
        self.policy = policy
        self.rules = rules
        self.connection = connection
        self.dispatcher = dispatcher
    }

    func decode(_ delivery: Delivery) throws(PermanentFailure) -> InteractionEvent {
        do {
            return try InteractionEvent.decode(delivery.body)
        } catch {
            throw PermanentFailure("not an interaction event: \(error)")
        }
    }

    func shutdown() async {
        await connection.close()
    }

    func handle(_ events: [InteractionEvent], logger: Logger) async throws {
        let policy = self.policy
        let points = rules.scorer.rules
        let (prompts, conversions, messages) = try await connection.withTransaction(logger: logger) { connection in
            let fresh = try await ConversionStore.claim(events.map(\.eventID), on: connection, logger: logger)
            let bySession = Dictionary(grouping: events.filter { fresh.contains($0.eventID) }, by: \.sessionID)
            guard !bySession.isEmpty else { return (0, 0, [OutboxMessage]()) }
            var states = try await ConversionStore.lockSessions(Array(bySession.keys), on: connection, logger: logger)
            var updates: [ConversionStore.SessionUpdate] = []
            var prompts: [ConversionStore.NewPrompt] = []
            var conversions: [ConversionStore.Converted] = []
            var withdrawals: [UUID] = []
            for (sessionID, sessionEvents) in bySession {
                var state = states[sessionID] ?? SessionState(variant: .init(sessionID: sessionID))
                var seen = Set<UUID>()
                var latest: (PromptPolicy.Decision, Date)?
                for event in sessionEvents.sorted(by: { $0.occurredAt < $1.occurredAt }) where seen.insert(event.eventID).inserted {
                    let decision = policy.apply(event, basePoints: points.points(for: event.type), to: &state)
                    if let converted = decision.converted {
                        conversions.append(.init(promptID: converted.promptID, at: event.occurredAt, seconds: converted.seconds))
                    }
                    if let withdrawn = decision.withdrawn { withdrawals.append(withdrawn) }
                    if decision.prompt, let promptID = decision.promptID {
                        prompts.append(
                            .init(
                                id: promptID, sessionID: sessionID, eventID: event.eventID, variant: state.variant,
                                intentScore: decision.intentScore, reason: decision.reason,
                                fields: state.missingFields, createdAt: event.occurredAt
                            )
                        )
                    }
                    latest = (decision, event.occurredAt)
                }
                states[sessionID] = state
                if let (decision, at) = latest {
                    updates.append(.init(sessionID: sessionID, state: state, decision: decision, decidedAt: at))
                }
            }
            let messages = try await ConversionStore.write(
                sessions: updates, prompts: prompts, conversions: conversions, withdrawals: withdrawals, on: connection, logger: logger
            )
            for prompt in prompts {
                logger.info(
                    "prompting for contact details",
                    metadata: ["session.id": "\(prompt.sessionID)", "intent": "\(prompt.intentScore)", "variant": "\(prompt.variant.rawValue)"]
                )
            }
            return (prompts.count, conversions.count, messages)
        }
        dispatcher.dispatch(messages)
        promptsCounter.increment(by: prompts)
        conversionsCounter.increment(by: conversions)
    }
}
