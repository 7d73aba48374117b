import AMQP
import Foundation
import NIOHTTP1
import PostgresNIO
import Testing

/// One interaction travels HTTP → RabbitMQ → scorer → PostgreSQL and out again as `lead.created`.
@Suite struct PipelineTests {
    func ingest() async throws -> String { try await SharedStack.shared.start().ingest + "/v1/interactions" }

    func unique(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(12).lowercased())" }

    func leadID(email: String) async throws -> Int64 {
        try await eventually("a lead for \(email)") {
            try await TestDatabase.scalar("SELECT id FROM leads WHERE email_normalized = \(email)", as: Int64.self)
        }
    }

    @Test func faceAnalysisWithContactBecomesALeadAndIsAnnounced() async throws {
        let tap = try await EventTap(routingKeys: ["lead.created", "lead.scored"])
        let session = unique("s")
        let email = unique("asha") + "@example.com"
        let eventID = UUID().uuidString.lowercased()
        let response = try await HTTP.postJSON(try await ingest(), [
            "event_id": eventID, "session_id": session, "type": "face_analysis", "source_page": "/face-analysis",
            "contact": ["name": "Asha Rao", "phone": "+91 98761 \(Int.random(in: 10000...99999))", "email": email.uppercased()],
            "data": ["recommendations": [["procedure": "Rhinoplasty"], ["procedure": "Botox"]], "urgency": "immediate"],
        ])
        #expect(response.status == 202)

        let lead = try await leadID(email: email)
        let row = try await TestDatabase.client.query(
            "SELECT patient_name, source, procedure_name, message, lead_score, engagement_level, status, session_id FROM leads WHERE id = \(lead)",
            logger: TestDatabase.logger
        )
        for try await (name, source, procedure, message, score, engagement, status, leadSession) in row.decode(
            (String, String, String, String, Int, String, String, String).self
        ) {
            #expect(name == "Asha Rao")
            #expect(source == "Face Analysis")
            #expect(procedure == "Rhinoplasty")
            #expect(message == "Face analysis completed with 2 recommendations")
            #expect(score == 100)  // 80 + 15 (two procedures) + 25 (immediate), capped
            #expect(engagement == "high")
            #expect(status == "new")
            #expect(leadSession == session)
        }
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE event_id = \(UUID(uuidString: eventID)!) AND lead_id = \(lead) AND converted_to_lead") == 1)
        #expect(try await TestDatabase.count("SELECT sum(points) FROM lead_score_ledger WHERE lead_id = \(lead)") == 100)

        let created = try await eventually("lead.created for lead \(lead)") {
            tap.messages(routingKey: "lead.created") { ($0["id"] as? Int).map(Int64.init) == lead }.first
        }
        #expect(created.messageID?.isEmpty == false)
        let scored = try await eventually("lead.scored for lead \(lead)") {
            tap.messages(routingKey: "lead.scored") { ($0["lead_id"] as? Int).map(Int64.init) == lead }.first
        }
        let body = try JSONSerialization.jsonObject(with: scored.body) as? [String: Any]
        let breakdown = body?["breakdown"] as? [[String: Any]] ?? []
        #expect(breakdown.compactMap { $0["points"] as? Int }.reduce(0, +) == 100)
        #expect(body?["event_id"] as? String == eventID)
        await tap.close()
    }

    @Test func sameEventIdTwiceIsProcessedOnce() async throws {
        let session = unique("dup")
        let eventID = UUID().uuidString.lowercased()
        let event: [String: Any] = ["event_id": eventID, "session_id": session, "type": "search"]
        #expect(try await HTTP.postJSON(try await ingest(), event).status == 202)
        #expect(try await HTTP.postJSON(try await ingest(), event).status == 202)
        // A marker sent after both: once it is stored, both copies have been through the scorer.
        let marker = UUID()
        #expect(try await HTTP.postJSON(try await ingest(), ["event_id": marker.uuidString, "session_id": session, "type": "page_view"]).status == 202)
        try await eventually("marker stored") {
            try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE event_id = \(marker)") == 1 ? true : nil
        }
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session)") == 2)
    }

    @Test func anonymousHistoryIsStitchedToTheLead() async throws {
        let session = unique("stitch")
        let email = unique("meera") + "@example.com"
        for type in ["page_view", "search", "cost_calculator"] {
            #expect(try await HTTP.postJSON(try await ingest(), ["session_id": session, "type": type]).status == 202)
        }
        try await eventually("anonymous interactions stored") {
            try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session)") == 3 ? true : nil
        }
        #expect(try await HTTP.postJSON(try await ingest(), [
            "session_id": session, "type": "ai_recommendation", "contact": ["email": email],
            "data": ["recommendations": [["procedure": "Botox"]]],
        ]).status == 202)
        let lead = try await leadID(email: email)
        try await eventually("all four interactions joined the lead") {
            try await TestDatabase.count(
                "SELECT count(*) FROM user_interactions WHERE session_id = \(session) AND lead_id = \(lead) AND converted_to_lead"
            ) == 4 ? true : nil
        }
        // 70 (cost calculator, the best) + 5 × 3 further types (page_view, search, ai_recommendation)
        #expect(try await TestDatabase.scalar("SELECT lead_score FROM leads WHERE id = \(lead)", as: Int.self) == 85)

        // Later anonymous interactions of the session join the lead too.
        #expect(try await HTTP.postJSON(try await ingest(), ["session_id": session, "type": "community_engagement"]).status == 202)
        try await eventually("later interaction joined") {
            try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session) AND lead_id = \(lead)") == 5 ? true : nil
        }
        #expect(try await TestDatabase.scalar("SELECT lead_score FROM leads WHERE id = \(lead)", as: Int.self) == 90)
    }

    @Test func onePersonAcrossSessionsIsOneLead() async throws {
        let email = unique("rohan") + "@example.com"
        let phone = "+91 97\(Int.random(in: 10_000_000...99_999_999))"
        let first = unique("one")
        #expect(try await HTTP.postJSON(try await ingest(), [
            "session_id": first, "type": "package_inquiry", "contact": ["email": email],
        ]).status == 202)
        let lead = try await leadID(email: email)
        #expect(try await HTTP.postJSON(try await ingest(), [
            "session_id": unique("two"), "type": "consultation", "contact": ["email": "  \(email.uppercased()) ", "phone": phone],
        ]).status == 202)
        try await eventually("second session joined the same lead") {
            try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE lead_id = \(lead)") == 2 ? true : nil
        }
        #expect(try await HTTP.postJSON(try await ingest(), [
            "session_id": unique("three"), "type": "appointment_booking", "contact": ["phone": phone],
        ]).status == 202)
        try await eventually("phone-only interaction joined the same lead") {
            try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE lead_id = \(lead)") == 3 ? true : nil
        }
        #expect(try await TestDatabase.count("SELECT count(*) FROM leads WHERE email_normalized = \(email)") == 1)
        #expect(try await TestDatabase.scalar("SELECT lead_score FROM leads WHERE id = \(lead)", as: Int.self) == 100)
    }

    @Test func placeholderContactMakesNoLead() async throws {
        let session = unique("placeholder")
        #expect(try await HTTP.postJSON(try await ingest(), [
            "session_id": session, "type": "face_analysis", "contact": ["email": "test@test.com", "phone": "0000000000"],
        ]).status == 202)
        try await eventually("interaction stored") {
            try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session)") == 1 ? true : nil
        }
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session) AND lead_id IS NOT NULL") == 0)
        #expect(try await TestDatabase.count("SELECT count(*) FROM leads WHERE session_id = \(session)") == 0)
    }
}
