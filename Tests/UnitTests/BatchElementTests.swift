import Foundation
import LeadCore
import LeadStore
import Testing

/// The scorer's element of the batch function's JSON, written field by field, is the JSON value the batch
/// function reads: the event's fields without its raw contact and consent, plus what the scorer computed.
@Suite struct BatchElementTests {
    /// The element as it was built before it was written field by field: the event's JSON object, contact and
    /// consent taken out, the scorer's fields put in.
    func reference(_ event: InteractionEvent, _ score: Score, _ lead: LeadCandidate) -> JSONValue {
        guard case .object(var object) = event.jsonValue else { return .null }
        object["contact"] = nil
        object["consent"] = nil
        object["score"] = .int(Int64(score.value))
        object["breakdown"] = .array(score.breakdown.map { .object(["rule": .string($0.rule), "points": .int(Int64($0.points))]) })
        object["modifiers"] = .int(Int64(score.modifierBits))
        object["can_create"] = .bool(lead.canCreateLead)
        object["source"] = JSONValue(lead.source)
        object["procedure_name"] = JSONValue(lead.procedureName)
        object["message"] = JSONValue(lead.message)
        object["name"] = JSONValue(lead.name)
        object["email"] = JSONValue(lead.email)
        object["phone"] = JSONValue(lead.phone)
        object["email_normalized"] = JSONValue(lead.emailNormalized)
        object["phone_normalized"] = JSONValue(lead.phoneNormalized)
        return .object(object)
    }

    static let events: [InteractionEvent] = [
        InteractionEvent(sessionID: "s-1", type: .pageView),
        InteractionEvent(
            sessionID: "s-2 \"quoted\" \\ ü 🙂", userID: 42, type: .faceAnalysis, sourcePage: "/face\nanalysis",
            contact: .init(name: "Asha \"A\" Rao", phone: "+91 98765 43210", email: " Asha@Example.com "),
            consent: .init(marketing: true),
            data: [
                "recommendations": .array([.object(["procedure": .string("Rhinoplasty")]), .object(["procedure": .string("Botox")])]),
                "urgency": .string("immediate"), "budget_range": .string("high"), "n": .int(-7), "x": .double(1.5), "ok": .bool(false),
                "none": .null,
            ]
        ),
        InteractionEvent(
            sessionID: "s-3", type: .costCalculator, contact: .init(phone: "(415) 555-0100"), consent: .init(),
            data: ["procedure": .string("Liposuction"), "get_quote": .bool(true), "budget_range": .string("low")]
        ),
        InteractionEvent(sessionID: "s-4", type: .search, contact: .init(name: "Only A Name"), data: ["q": .string("tab\there")]),
    ]

    @Test(arguments: events) func elementIsTheSameValue(event: InteractionEvent) throws {
        let scorer = InteractionScorer()
        let score = scorer.score(event)
        let lead = LeadRules.candidate(for: event)
        let item = InteractionStore.ScoredInteraction(event: event, score: score, lead: lead)
        let parsed = try JSONParser.parse(Array(InteractionStore.batchJSON([item]).utf8))
        #expect(parsed == .array([reference(event, score, lead)]))
    }
}
