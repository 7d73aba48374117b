import Foundation
import LeadCore
import Testing

@Suite struct PromptPolicyTests {
    let policy = PromptPolicy()
    let start = JSONCoding.parseTimestamp("2026-11-26T09:00:00Z")!

    func event(_ type: InteractionType, at minutes: Double = 0, session: String = "s-a", contact: InteractionEvent.Contact? = nil,
               consent: Bool? = nil) -> InteractionEvent {
        InteractionEvent(sessionID: session, type: type, occurredAt: start.addingTimeInterval(minutes * 60), contact: contact,
                         consent: consent.map { .init(marketing: $0) })
    }

    func state(_ variant: SessionState.Variant) -> SessionState { SessionState(variant: variant) }

    // MARK: intent score

    @Test func intentIsBestPointsPlusDistinctTypesPlusBurst() {
        var session = state(.a)
        _ = policy.apply(event(.pageView, at: 0), basePoints: 1, to: &session)
        #expect(IntentScore.compute(session) == 1)
        _ = policy.apply(event(.search, at: 20), basePoints: 5, to: &session)
        #expect(IntentScore.compute(session) == 10)  // 5 + 5 (one further type)
        _ = policy.apply(event(.costCalculator, at: 40), basePoints: 70, to: &session)
        #expect(IntentScore.compute(session) == 80)  // 70 + 10, no burst (20 minutes apart)
        _ = policy.apply(event(.costCalculator, at: 41), basePoints: 70, to: &session)
        _ = policy.apply(event(.costCalculator, at: 42), basePoints: 70, to: &session)
        #expect(IntentScore.compute(session) == 90)  // + 10 for 3 within 10 minutes
    }

    @Test func burstIsOrderIndependentAndExactlyTenMinutes() {
        let t = start
        #expect(IntentScore.hasBurst([t.addingTimeInterval(600), t, t.addingTimeInterval(300)]))
        #expect(!IntentScore.hasBurst([t, t.addingTimeInterval(300), t.addingTimeInterval(601)]))
        #expect(!IntentScore.hasBurst([t, t]))
    }

    @Test func intentIsCappedAtHundred() {
        var session = state(.a)
        for (offset, type) in [InteractionType.appointmentBooking, .consultation, .faceAnalysis, .packageInquiry].enumerated() {
            _ = policy.apply(event(type, at: Double(offset)), basePoints: 90, to: &session)
        }
        #expect(IntentScore.compute(session) == 100)
    }

    // MARK: thresholds (59/60/69/70)

    @Test(arguments: [
        (SessionState.Variant.a, 69, false), (.a, 70, true), (.a, 71, true),
        (.b, 59, false), (.b, 60, true), (.b, 69, true),
    ])
    func thresholdBoundaries(variant: SessionState.Variant, intent: Int, prompts: Bool) {
        #expect(policy.decide(state(variant), intent: intent, now: start).prompt == prompts)
    }

    @Test func variantIsStableAndRoughlyHalf() {
        #expect(SessionState.Variant(sessionID: "s-81f2") == SessionState.Variant(sessionID: "s-81f2"))
        let bs = (0..<10_000).filter { SessionState.Variant(sessionID: "session-\($0)") == .b }.count
        #expect((4_700...5_300).contains(bs))
    }

    // MARK: cool-down, cap, contact, consent

    @Test(arguments: [(29.0, false), (29.99, false), (30.0, true), (45.0, true)])
    func coolDownOfThirtyMinutes(minutes: Double, prompts: Bool) {
        var session = state(.a)
        session.prompts = 1
        session.lastPromptAt = start
        #expect(policy.decide(session, intent: 80, now: start.addingTimeInterval(minutes * 60)).prompt == prompts)
    }

    @Test(arguments: [(2, true), (3, false), (4, false)])
    func atMostThreePrompts(previous: Int, prompts: Bool) {
        var session = state(.a)
        session.prompts = previous
        #expect(policy.decide(session, intent: 90, now: start).prompt == prompts)
    }

    @Test func knownContactIsNeverPrompted() {
        var session = state(.a)
        let decision = policy.apply(event(.faceAnalysis, contact: .init(email: "asha.rao@example.com")), basePoints: 80, to: &session)
        #expect(!decision.prompt)
        #expect(session.missingFields == ["name", "phone"])
    }

    @Test func nameAloneIsNotAContact() {
        var session = state(.a)
        let decision = policy.apply(event(.faceAnalysis, contact: .init(name: "Asha")), basePoints: 80, to: &session)
        #expect(decision.prompt)
        #expect(session.missingFields == ["phone", "email"])
    }

    @Test func withdrawnConsentSilencesForTwentyFourHours() {
        var session = state(.a)
        _ = policy.apply(event(.pageView, at: 0, consent: false), basePoints: 1, to: &session)
        #expect(!policy.apply(event(.faceAnalysis, at: 60), basePoints: 80, to: &session).prompt)
        #expect(!policy.decide(session, intent: 80, now: start.addingTimeInterval(24 * 3600 - 1)).prompt)
        #expect(policy.decide(session, intent: 80, now: start.addingTimeInterval(24 * 3600)).prompt)
    }

    @Test func dismissedPromptSilencesForTwentyFourHours() {
        var session = state(.a)
        #expect(policy.apply(event(.faceAnalysis, at: 0), basePoints: 80, to: &session).prompt)
        _ = policy.apply(event(.promptDismissed, at: 1), basePoints: 0, to: &session)
        #expect(!policy.apply(event(.consultation, at: 40), basePoints: 85, to: &session).prompt)
    }

    /// Two workers may apply a session's events out of order: a dismissal that happened before a prompt was
    /// decided, applied after it, withdraws that prompt.
    @Test func lateDismissalWithdrawsTheLaterPrompt() {
        var session = state(.a)
        let first = policy.apply(event(.faceAnalysis, at: 0), basePoints: 80, to: &session)
        let dismissal = policy.apply(event(.promptDismissed, at: 1), basePoints: 0, to: &session)
        #expect(dismissal.withdrawn == nil)  // dismissing the prompt it answers withdraws nothing
        let second = policy.apply(event(.consultation, at: 50), basePoints: 85, to: &session)
        #expect(first.prompt && !second.prompt)

        var raced = state(.a)
        let prompted = policy.apply(event(.faceAnalysis, at: 0), basePoints: 80, to: &raced)
        let consultation = policy.apply(event(.consultation, at: 50), basePoints: 85, to: &raced)  // applied first
        let lateDismissal = policy.apply(event(.promptDismissed, at: 1), basePoints: 0, to: &raced)
        #expect(prompted.prompt && consultation.prompt)
        #expect(lateDismissal.withdrawn == consultation.promptID)
        #expect(raced.openPromptID == nil)
        #expect(!policy.apply(event(.appointmentBooking, at: 90), basePoints: 90, to: &raced).prompt)
    }

    @Test func contactAfterAPromptConvertsIt() {
        var session = state(.b)
        let prompt = policy.apply(event(.aiRecommendation, at: 0), basePoints: 60, to: &session)
        #expect(prompt.prompt)
        let answer = policy.apply(event(.aiRecommendation, at: 3, contact: .init(phone: "+91 98761 43210")), basePoints: 60, to: &session)
        #expect(answer.converted?.promptID == prompt.promptID)
        #expect(answer.converted?.seconds == 180)
        #expect(!answer.prompt)
    }

    @Test func lateInteractionNeverTriggersAPrompt() {
        var session = state(.a)
        _ = policy.apply(event(.pageView, at: 60), basePoints: 1, to: &session)
        let late = policy.apply(event(.consultation, at: 0), basePoints: 85, to: &session)
        #expect(!late.prompt)
        #expect(late.reason == "interaction arrived late")
        // ...but it counts: the next interaction prompts.
        #expect(policy.apply(event(.pageView, at: 61), basePoints: 1, to: &session).prompt)
    }
}

@Suite struct ExperimentTests {
    @Test func wilsonIntervalMatchesKnownValues() {
        let (low, high) = ExperimentReport.wilsonInterval(successes: 50, trials: 100)
        #expect(abs(low - 0.4038) < 0.001)
        #expect(abs(high - 0.5962) < 0.001)
        #expect(ExperimentReport.wilsonInterval(successes: 0, trials: 0) == (0, 0))
    }

    @Test func zTestFindsARealDifference() {
        let report = ExperimentReport(counts: [("A", 1000, 500, 500, 50), ("B", 1000, 500, 500, 100)])
        #expect(report.significant)
        #expect(abs(report.zScore! - (-4.428)) < 0.01)  // (0.1 - 0.2) / sqrt(0.15 × 0.85 × (2 / 500))
    }

    @Test func zTestDoesNotFindNoise() {
        let report = ExperimentReport(counts: [("A", 100, 40, 40, 10), ("B", 100, 40, 40, 12)])
        #expect(!report.significant)
        #expect(report.pValue! > 0.5)
    }

    @Test func noDataNoTest() {
        let report = ExperimentReport(counts: [("A", 0, 0, 0, 0), ("B", 3, 0, 0, 0)])
        #expect(report.zScore == nil)
        #expect(!report.significant)
    }
}
