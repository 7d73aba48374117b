import Foundation

/// When lead-conversion asks a session for contact details (CONTRACT section 8). All thresholds come from
/// the environment (`PROMPT_*`); the defaults are the contract's.
package struct PromptPolicy: Sendable, Equatable {
    package var threshold = 70
    package var thresholdVariantB = 60
    package var cooldown: TimeInterval = 30 * 60
    package var maxPrompts = 3
    /// How long a withdrawn consent or a dismissed prompt silences a session.
    package var suppression: TimeInterval = 24 * 3600
    /// An interaction older than this, relative to the session's latest one, arrived late: it updates the
    /// session but never triggers a prompt of its own.
    package var staleAfter: TimeInterval = 10 * 60

    package init() {}

    package struct Decision: Sendable, Equatable {
        package var prompt: Bool
        package var reason: String
        package var intentScore: Int
        /// Set when `prompt`: the new prompt's id.
        package var promptID: UUID?
        /// The open prompt this interaction answered (it brought a phone or an email), and after how long.
        package var converted: (promptID: UUID, seconds: Double)?
        /// An open prompt made after this (late) dismissal or consent withdrawal: withdrawn, since the visitor
        /// had already said no when it was decided (two workers can apply a session's events out of order).
        package var withdrawn: UUID?

        package static func == (lhs: Decision, rhs: Decision) -> Bool {
            lhs.prompt == rhs.prompt && lhs.reason == rhs.reason && lhs.intentScore == rhs.intentScore
                && lhs.promptID == rhs.promptID && lhs.converted?.promptID == rhs.converted?.promptID
        }
    }

    package func threshold(for variant: SessionState.Variant) -> Int {
        variant == .b ? thresholdVariantB : threshold
    }

    /// Folds one interaction into the session, then decides. `now` is the interaction's own time, so the
    /// decision does not depend on when a worker happens to process it.
    package func apply(
        _ event: InteractionEvent,
        basePoints: Int,
        to state: inout SessionState
    ) -> Decision {
        let now = event.occurredAt
        let hadContact = state.hasContact
        let isLate = state.lastSeenAt.map { now < $0.addingTimeInterval(-staleAfter) } ?? false
        state.interactionCount += 1
        state.types.insert(event.type.rawValue)
        state.maxPoints = max(state.maxPoints, basePoints)
        state.recentTimes.append(now)
        if state.recentTimes.count > SessionState.maxRecentTimes {
            state.recentTimes.sort()
            state.recentTimes.removeFirst(state.recentTimes.count - SessionState.maxRecentTimes)
        }
        state.lastSeenAt = max(state.lastSeenAt ?? now, now)
        if let contact = event.contact {
            if contact.name != nil { state.contactFields.insert("name") }
            if ContactNormalizer.phone(contact.phone) != nil { state.contactFields.insert("phone") }
            if ContactNormalizer.email(contact.email) != nil { state.contactFields.insert("email") }
        }
        var withdrawn: UUID?
        if event.consent?.marketing == false || event.type == .promptDismissed {
            let until = now.addingTimeInterval(suppression)
            state.suppressedUntil = max(state.suppressedUntil ?? until, until)
            if let open = state.openPromptID, let openedAt = state.openPromptAt, openedAt > now, openedAt < until {
                withdrawn = open
                state.openPromptID = nil
                state.openPromptAt = nil
            }
        }
        var converted: (UUID, Double)?
        if !hadContact, state.hasContact, let promptID = state.openPromptID, let promptedAt = state.openPromptAt {
            converted = (promptID, max(0, now.timeIntervalSince(promptedAt)))
            state.openPromptID = nil
            state.openPromptAt = nil
        }
        let intent = IntentScore.compute(state)
        var decision = decide(state, intent: intent, now: now, isLate: isLate)
        decision.converted = converted
        decision.withdrawn = withdrawn
        if decision.prompt {
            let promptID = UUID.random()
            decision.promptID = promptID
            state.prompts += 1
            state.lastPromptAt = now
            state.openPromptID = promptID
            state.openPromptAt = now
        }
        return decision
    }

    package func decide(_ state: SessionState, intent: Int, now: Date, isLate: Bool = false) -> Decision {
        let threshold = threshold(for: state.variant)
        func no(_ reason: String) -> Decision { Decision(prompt: false, reason: reason, intentScore: intent, promptID: nil, converted: nil, withdrawn: nil) }
        if state.hasContact { return no("contact already known") }
        if let until = state.suppressedUntil, now < until {
            return no("suppressed until \(JSONCoding.formatTimestamp(until)) (consent withdrawn or prompt dismissed)")
        }
        if intent < threshold { return no("intent \(intent) below threshold \(threshold) (variant \(state.variant.rawValue))") }
        if state.prompts >= maxPrompts { return no("already prompted \(state.prompts) times") }
        if let last = state.lastPromptAt, now.timeIntervalSince(last) < cooldown {
            return no("prompted \(Int(now.timeIntervalSince(last) / 60)) minutes ago (cool-down \(Int(cooldown / 60)) minutes)")
        }
        if isLate { return no("interaction arrived late") }
        return Decision(
            prompt: true,
            reason: "intent \(intent) reached threshold \(threshold) (variant \(state.variant.rawValue))",
            intentScore: intent,
            promptID: nil,
            converted: nil,
            withdrawn: nil
        )
    }
}
