import Foundation
import LeadCore
import Testing

@Suite struct AlertRulesTests {
    let rules = AlertRules(highScoreThreshold: 80)

    func scored(_ score: Int, previous: Int?) -> JSONValue {
        .object([
            "lead_id": 5, "lead_score": .int(Int64(score)), "previous_score": previous.map { .int(Int64($0)) } ?? .null,
            "source": "Consultation", "procedure_name": "Botox",
            "breakdown": .array([.object(["rule": "type:consultation", "points": 85])]),
        ])
    }

    @Test(arguments: [
        (79, nil as Int?, false), (80, nil, true), (95, 79, true), (95, 80, false), (70, 60, false), (100, 99, false),
    ])
    func highScoreFiresOnTheCrossingOnly(score: Int, previous: Int?, fires: Bool) {
        #expect((rules.highScore(from: scored(score, previous: previous)) != nil) == fires)
    }

    @Test func highScoreAlertIsKeyedByLead() throws {
        let alert = try #require(rules.highScore(from: scored(90, previous: 10)))
        #expect(alert.dedupeKey == "high_score:5")
        #expect(alert.payload["reasons"] == .array(["type:consultation +85"]))
        #expect(alert.payload["alert_id"] == .string(alert.id.uuidString.lowercased()))
        #expect(alert.routingKey == "alert.high_score")
    }

    @Test(arguments: [(84, false), (85, true), (100, true)])
    func opportunityFromIntent(intent: Int, fires: Bool) {
        let prompt: JSONValue = .object(["prompt_id": "p-1", "session_id": "s-1", "intent_score": .int(Int64(intent)), "reason": "r"])
        #expect((rules.opportunity(from: prompt) != nil) == fires)
    }

    @Test func backoffGrowsExponentiallyWithinJitterAndCap() {
        let schedule = RetrySchedule(base: .seconds(5), cap: .seconds(3600), jitter: 0.2)
        var generator = SystemRandomNumberGenerator()
        for (attempt, nominal) in [(1, 5.0), (2, 10.0), (3, 20.0), (10, 2560.0), (11, 3600.0), (40, 3600.0)] {
            let delay = schedule.delay(afterAttempt: attempt, using: &generator)
            let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
            #expect(seconds >= nominal * 0.8 - 0.001 && seconds <= nominal * 1.2 + 0.001, "attempt \(attempt): \(seconds)")
        }
    }
}
