import LeadCore
import Testing

@Suite struct ScoringTests {
    let scorer = InteractionScorer()

    @Test(arguments: [
        (InteractionType.appointmentBooking, 90), (.faceAnalysis, 80), (.packageInquiry, 75), (.costCalculator, 70),
        (.aiRecommendation, 60), (.consultation, 85), (.search, 5), (.pageView, 1), (.registration, 20),
        (.communityEngagement, 10), (.promptDismissed, 0),
    ])
    func basePoints(type: InteractionType, points: Int) {
        let score = scorer.score(type: type, data: [:])
        #expect(score.value == points)
        #expect(score.breakdown == [ScoreLine(rule: "type:\(type.rawValue)", points: points)])
    }

    @Test func modifiersAddUp() {
        let score = scorer.score(type: .aiRecommendation, data: ["budget_range": .string("high")])
        #expect(score.value == 80)
        let urgent = scorer.score(type: .aiRecommendation, data: ["urgency": .string("immediate")])
        #expect(urgent.value == 85)
        let multiple = scorer.score(type: .aiRecommendation, data: ["multiple_procedures": .bool(true)])
        #expect(multiple.value == 75)
        // The bits stored with each interaction for the prediction features (lead_modifiers in SQL).
        #expect(score.modifierBits == 1 && urgent.modifierBits == 2 && multiple.modifierBits == 4)
        #expect(scorer.score(type: .aiRecommendation, data: [:]).modifierBits == 0)
    }

    @Test func twoDistinctProceduresCountAsMultiple() {
        let data: [String: JSONValue] = [
            "recommendations": .array([.object(["procedure": .string("Botox")]), .object(["procedure": .string("Rhinoplasty")])])
        ]
        #expect(scorer.score(type: .aiRecommendation, data: data).value == 75)
        let same: [String: JSONValue] = [
            "recommendations": .array([.object(["procedure": .string("Botox")]), .object(["procedure": .string("botox")])])
        ]
        #expect(scorer.score(type: .aiRecommendation, data: same).value == 60)
    }

    @Test func capAtHundredIsExplained() {
        let data: [String: JSONValue] = ["budget_range": .string("high"), "urgency": .string("immediate"), "multiple_procedures": .bool(true)]
        let score = scorer.score(type: .appointmentBooking, data: data)
        #expect(score.value == 100)
        #expect(score.breakdown.last == ScoreLine(rule: "cap", points: -50))
        #expect(score.modifierBits == 7)
        #expect(score.breakdown.reduce(0) { $0 + $1.points } == score.value)
    }

    @Test func rulesFromTheTableApply() {
        var rules = ScoringRules.defaults
        rules.points[.search] = 15
        #expect(InteractionScorer(rules: rules).score(type: .search, data: [:]).value == 15)
    }

    @Test(arguments: [(0, EngagementLevel.low), (39, .low), (40, .medium), (69, .medium), (70, .high), (100, .high)])
    func engagementLevels(score: Int, level: EngagementLevel) {
        #expect(EngagementLevel(score: score) == level)
    }
}
