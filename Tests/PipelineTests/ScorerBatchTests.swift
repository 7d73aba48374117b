import Foundation
import LeadCore
import PostgresNIO
import Testing

/// The scorer's batch function (`lead_process_events`) called directly with batches built like the scorer's, to
/// check the effects its shortcuts must keep: a lead created with its session's anonymous history in the same
/// batch, an anonymous interaction inserted already linked, a lead that only gets a later last interaction
/// (no message), and ledger rows and messages in the order the events came.
@Suite struct ScorerBatchTests {
    struct Line {
        var rule: String
        var points: Int
    }

    /// One element of the batch as `InteractionStore.ScoredInteraction` writes it.
    func element(
        session: String, type: String, lines: [Line], at: Date, email: String? = nil, name: String? = nil, canCreate: Bool = false
    ) -> JSONValue {
        let score = min(100, lines.reduce(0) { $0 + $1.points })
        return .object([
            "event_id": .string(UUID().uuidString.lowercased()), "session_id": .string(session), "type": .string(type),
            "source_page": "/test", "data": .object([:]), "occurred_at": .string(JSONCoding.formatTimestamp(at)),
            "received_at": .string(JSONCoding.formatTimestamp(at)), "score": .int(Int64(score)),
            "breakdown": .array(lines.map { .object(["rule": .string($0.rule), "points": .int(Int64($0.points))]) }),
            "can_create": .bool(canCreate), "source": canCreate ? "Face Analysis" : .null,
            "procedure_name": canCreate ? "Botox" : .null, "message": canCreate ? "Face analysis completed" : .null,
            "name": name.map { .string($0) } ?? .null, "email": email.map { .string($0) } ?? .null, "phone": .null,
            "email_normalized": email.map { .string($0) } ?? .null, "phone_normalized": .null,
        ])
    }

    /// The messages about `lead` (other tests' services write to the outbox meanwhile).
    func about(_ lead: Int64, _ messages: [(String, [String: Any])]) -> [(String, [String: Any])] {
        messages.filter { _, body in ((body["lead_id"] ?? body["id"]) as? Int).map(Int64.init) == lead }
    }

    /// Runs one batch and returns the `lead.*` outbox messages written since it started (routing key, body), read
    /// inside its transaction. (The shared stack's lead-alerts may add alerts about the same lead meanwhile, from
    /// an earlier batch's relayed `lead.scored`.)
    func process(_ batch: [JSONValue]) async throws -> [(String, [String: Any])] {
        let json = JSONWriter.string(.array(batch))
        return try await TestDatabase.client.withTransaction(logger: TestDatabase.logger) { connection in
            let before = try await connection.query("SELECT COALESCE(max(id), 0) FROM outbox", logger: TestDatabase.logger)
            var last: Int64 = 0
            for try await id in before.decode(Int64.self) { last = id }
            _ = try await connection.query("SELECT * FROM lead_process_events(\(json)::jsonb)", logger: TestDatabase.logger)
            var messages: [(String, [String: Any])] = []
            let rows = try await connection.query(
                "SELECT routing_key, body::text FROM outbox WHERE id > \(last) AND routing_key LIKE 'lead.%' ORDER BY id",
                logger: TestDatabase.logger
            )
            for try await (key, body) in rows.decode((String, String).self) {
                messages.append((key, try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]))
            }
            return messages
        }
    }

    @Test func oneBatchCreatesStitchesAndLaterOnlyAnnouncesRealChanges() async throws {
        _ = try await SharedStack.shared.start()  // migrated database
        let session = "batch-\(UUID().uuidString.prefix(12).lowercased())"
        let email = "\(session)@example.com"
        let start = Date(timeIntervalSince1970: 1_790_000_000)

        // Anonymous history and the contact that makes the lead, all in one batch.
        let firstBatch = try await process([
            element(session: session, type: "page_view", lines: [Line(rule: "type:page_view", points: 1)], at: start),
            element(session: session, type: "search", lines: [Line(rule: "type:search", points: 5)], at: start + 1),
            element(
                session: session, type: "face_analysis", lines: [Line(rule: "type:face_analysis", points: 80)], at: start + 2,
                email: email, name: "Batch Person", canCreate: true
            ),
        ])
        let lead = try #require(try await TestDatabase.scalar("SELECT id FROM leads WHERE email_normalized = \(email)", as: Int64.self))
        let first = about(lead, firstBatch)
        #expect(first.map(\.0) == ["lead.scored", "lead.created"])
        #expect(first.first?.1["lead_score"] as? Int == 90)  // 80 + 5 × 2 further types
        #expect(first.first?.1["previous_score"] is NSNull)
        #expect(first.last?.1["lead_score"] as? Int == 90)
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session) AND lead_id = \(lead) AND converted_to_lead") == 3)
        #expect(try await TestDatabase.scalar("SELECT first_interaction_type FROM leads WHERE id = \(lead)", as: String.self) == "page_view")
        #expect(try await TestDatabase.count("SELECT sum(points) FROM lead_score_ledger WHERE lead_id = \(lead)") == 90)
        let updatedAt = try #require(try await TestDatabase.scalar("SELECT updated_at FROM leads WHERE id = \(lead)", as: Date.self))

        // A later anonymous interaction of a type the lead has: linked on insert, nothing shown changes, no message.
        let quiet = about(lead, try await process([
            element(session: session, type: "page_view", lines: [Line(rule: "type:page_view", points: 1)], at: start + 60)
        ]))
        #expect(quiet.isEmpty)
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session) AND lead_id = \(lead)") == 4)
        #expect(try await TestDatabase.scalar("SELECT last_interaction_at FROM leads WHERE id = \(lead)", as: Date.self) == start + 60)
        #expect(try await TestDatabase.scalar("SELECT updated_at FROM leads WHERE id = \(lead)", as: Date.self) == updatedAt)
        #expect(try await TestDatabase.count("SELECT count(*) FROM lead_score_ledger WHERE lead_id = \(lead)") == 2)

        // Two anonymous interactions in one batch: one of a new type (score changes), then one that changes nothing.
        let third = [
            element(session: session, type: "cost_calculator", lines: [Line(rule: "type:cost_calculator", points: 70)], at: start + 120),
            element(session: session, type: "search", lines: [Line(rule: "type:search", points: 5)], at: start + 180),
        ]
        let changed = about(lead, try await process(third))
        #expect(changed.map(\.0) == ["lead.scored", "lead.updated"])
        #expect(changed.first?.1["lead_score"] as? Int == 95)  // 80 + 5 × 3
        #expect(changed.first?.1["previous_score"] as? Int == 90)
        #expect(changed.last?.1["lead_score"] as? Int == 95)
        #expect(try await TestDatabase.scalar("SELECT last_interaction_at FROM leads WHERE id = \(lead)", as: Date.self) == start + 180)
        let latest = try await TestDatabase.count(
            "SELECT sum(points) FROM lead_score_ledger WHERE lead_id = \(lead) AND event_id = (SELECT event_id FROM lead_score_ledger WHERE lead_id = \(lead) ORDER BY id DESC LIMIT 1)"
        )
        #expect(latest == 95)

        // The same batch again (a redelivery) changes nothing.
        #expect(about(lead, try await process(third)).isEmpty)
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session)") == 6)
        #expect(try await TestDatabase.count("SELECT count(*) FROM lead_score_ledger WHERE lead_id = \(lead)") == 4)
    }
}
