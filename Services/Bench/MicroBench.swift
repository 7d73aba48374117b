import Foundation
import Histogram
import LeadCore
import LeadStore

/// In-process micro-benchmarks of the pure parts on a request's and an event's path: ingest's parse +
/// validate + encode of one event, and the scorer's decode + score + lead decision. Nanoseconds per
/// operation (p50 and p99 of batches of 1,000). ordo-one/benchmark would be the tool, but on Linux with
/// Swift 6.3 it needs ordo-one/swift-runtime-interposer, which the package mirror here does not have.
struct MicroBench {
    struct Result {
        var name: String
        var p50: Double
        var p99: Double
        var operations: Int
    }

    static func run(batches: Int = 200, perBatch: Int = 1_000) throws -> [Result] {
        let body = Array(
            #"""
            {"event_id":"6f1c2d7e-8a9b-4c3d-9e8f-7a6b5c4d3e2f","session_id":"s-81f2a9c0","user_id":42,
             "type":"face_analysis","source_page":"/face-analysis",
             "contact":{"name":"Asha Rao","phone":"+91 98765 43210","email":"asha@example.com"},
             "consent":{"marketing":true},
             "data":{"recommendations":[{"procedure":"Rhinoplasty"},{"procedure":"Botox"}],"urgency":"immediate","budget_range":"high"}}
            """#.utf8
        )
        let validator = InteractionValidator()
        let scorer = InteractionScorer()
        let event = try validator.validate(try JSONParser.parse(body))
        let message = event.encoded()
        let score = scorer.score(event)
        let lead = LeadRules.candidate(for: event)

        func measure(_ name: String, _ operation: () throws -> Void) rethrows -> Result {
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            for _ in 0..<batches {
                let started = ContinuousClock.now
                for _ in 0..<perBatch { try operation() }
                let elapsed = ContinuousClock.now - started
                histogram.record(UInt64(max(0, elapsed.seconds * 1e9 / Double(perBatch))))
            }
            return Result(
                name: name, p50: Double(histogram.valueAtPercentile(50)), p99: Double(histogram.valueAtPercentile(99)),
                operations: batches * perBatch
            )
        }

        var sink = 0
        let results = [
            try measure("ingest.parse_validate_encode") {
                let parsed = try validator.validate(try JSONParser.parse(body))
                sink &+= parsed.encoded().count
            },
            try measure("scorer.decode_score_decide") {
                let decoded = try InteractionEvent.decode(message)
                sink &+= scorer.score(decoded).value
                sink &+= LeadRules.candidate(for: decoded).canCreateLead ? 1 : 0
            },
            // The element of the batch function's JSON for that event (what the scorer sends PostgreSQL).
            measure("scorer.batch_element") {
                let element = InteractionStore.ScoredInteraction(event: event, score: score, lead: lead)
                sink &+= element.lockKeys.count
            },
        ]
        precondition(sink != 42, "keeps the work from being optimized away")
        return results
    }
}
