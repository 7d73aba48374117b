import Foundation
import HTTPTypes
import Hummingbird
import LeadCore
import LeadService
import Logging
import PostgresNIO

/// GDPR: everything held about a person, and erasure of their contact data everywhere (counts stay).
struct ContactsController: Sendable {
    let client: PostgresClient
    let outboxSignal: WakeSignal

    func addRoutes(to group: RouterGroup<BasicRequestContext>) {
        group.get("contacts/export", use: export)
        group.post("contacts/erase", use: erase)
    }

    /// The person's normalized email and phone; at least one is required.
    static func person(email: String?, phone: String?) throws(APIError) -> (email: String?, phone: String?) {
        let normalizedEmail = email.flatMap { ContactNormalizer.email($0) }
        let normalizedPhone = phone.flatMap { ContactNormalizer.phone($0) }
        if email != nil, normalizedEmail == nil {
            throw APIError(.unprocessableContent, code: "invalid_field", "not a usable email address", field: "email")
        }
        if phone != nil, normalizedPhone == nil {
            throw APIError(.unprocessableContent, code: "invalid_field", "not a usable phone number", field: "phone")
        }
        guard normalizedEmail != nil || normalizedPhone != nil else {
            throw APIError(.unprocessableContent, code: "missing_field", "give email or phone", field: "email")
        }
        return (normalizedEmail, normalizedPhone)
    }

    @Sendable func export(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let query = request.queryDictionary
        let (email, phone) = try Self.person(email: query["email"], phone: query["phone"])
        let rows = try await client.query(
            """
            SELECT jsonb_build_object(
                'lead', to_jsonb(l) - 'email_normalized' - 'phone_normalized',
                'interactions', COALESCE((SELECT jsonb_agg(to_jsonb(ui) - 'contact_key' ORDER BY ui.occurred_at) FROM user_interactions ui WHERE ui.lead_id = l.id), '[]'),
                'score_history', COALESCE((SELECT jsonb_agg(to_jsonb(g) ORDER BY g.id) FROM lead_score_ledger g WHERE g.lead_id = l.id), '[]'),
                'alerts', COALESCE((SELECT jsonb_agg(to_jsonb(a) ORDER BY a.created_at) FROM alerts a WHERE a.lead_id = l.id), '[]'),
                'outcomes', COALESCE((SELECT jsonb_agg(to_jsonb(o) ORDER BY o.occurred_at) FROM lead_outcomes o WHERE o.lead_id = l.id), '[]'),
                'sessions', COALESCE((SELECT jsonb_agg(s.session_id) FROM session_leads s WHERE s.lead_id = l.id), '[]')
            )::text
            FROM leads l
            WHERE (\(email)::text IS NOT NULL AND l.email_normalized = \(email)) OR (\(phone)::text IS NOT NULL AND l.phone_normalized = \(phone))
            ORDER BY l.id
            """,
            logger: context.logger
        )
        var records: [JSONValue] = []
        for try await text in rows.decode(String.self) { records.append(try JSONParser.parse(text.utf8, maxDepth: 128)) }
        return .json(.object([
            "exported_at": .string(JSONCoding.formatTimestamp(Date())), "leads": .array(records),
            "note": "personal data held by lead-pipeline for this email/phone; analytics keep only anonymous counts",
        ]))
    }

    @Sendable func erase(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let bytes = try await request.body.collect(upTo: 16 * 1024)
        guard let body = try? JSONParser.parse(bytes.readableBytesView), case .object = body else {
            throw APIError(.badRequest, code: "malformed_json", "the body must be a JSON object with email and/or phone")
        }
        let (email, phone) = try Self.person(email: body["email"]?.stringValue, phone: body["phone"]?.stringValue)
        let erasureID = UUID.random()
        let logger = context.logger
        let (leads, interactions) = try await client.withTransaction(logger: logger) { connection -> ([Int64], Int) in
            var ids: [Int64] = []
            for try await id in try await connection.query(
                """
                SELECT id FROM leads
                WHERE (\(email)::text IS NOT NULL AND email_normalized = \(email)) OR (\(phone)::text IS NOT NULL AND phone_normalized = \(phone))
                FOR UPDATE
                """,
                logger: logger
            ).decode(Int64.self) {
                ids.append(id)
            }
            guard !ids.isEmpty else { return ([], 0) }
            try await connection.query(
                """
                UPDATE leads SET patient_name = NULL, mobile_number = NULL, email = NULL, email_normalized = NULL,
                    phone_normalized = NULL, message = NULL, updated_at = now()
                WHERE id = ANY(\(ids))
                """,
                logger: logger
            )
            var interactions = 0
            for try await count in try await connection.query(
                "WITH scrubbed AS (UPDATE user_interactions SET data = '{}'::jsonb, contact_key = NULL WHERE lead_id = ANY(\(ids)) RETURNING 1) SELECT count(*) FROM scrubbed",
                logger: logger
            ).decode(Int.self) {
                interactions = count
            }
            // Messages not yet published must not carry the data either.
            try await connection.query(
                """
                UPDATE outbox SET body = (body - 'patient_name' - 'mobile_number' - 'email' - 'message')
                    || '{"patient_name": null, "mobile_number": null, "email": null, "message": null}'::jsonb
                WHERE routing_key IN ('lead.created', 'lead.updated') AND (body->>'id')::bigint = ANY(\(ids))
                """,
                logger: logger
            )
            try await connection.query(
                "INSERT INTO erasures (id, lead_count, interaction_count) VALUES (\(erasureID), \(ids.count), \(interactions))",
                logger: logger
            )
            let message = JSONWriter.string(.object([
                "erasure_id": .string(erasureID.lowercasedString), "lead_ids": .array(ids.map { .int($0) }),
            ]))
            try await connection.query(
                "INSERT INTO outbox (exchange, routing_key, body) VALUES ('leads.events', 'contact.erased', \(message)::jsonb)",
                logger: logger
            )
            return (ids, interactions)
        }
        if !leads.isEmpty { outboxSignal.notify() }
        logger.info("contact data erased", metadata: ["erasure.id": "\(erasureID)", "leads": "\(leads.count)"])
        return .json(.object([
            "erasure_id": leads.isEmpty ? .null : .string(erasureID.lowercasedString),
            "leads": .int(Int64(leads.count)), "interactions": .int(Int64(interactions)),
        ]))
    }
}
