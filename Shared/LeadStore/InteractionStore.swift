import Foundation
import LeadCore
import Logging
import PostgresNIO

/// The scorer's write path: a batch of scored interactions, persisted in one statement inside a transaction.
package struct InteractionStore: Sendable {
    /// What one batch did.
    package struct BatchResult: Sendable, Equatable {
        package var inserted = 0
        package var duplicates = 0
        package var leadsCreated = 0
        package var leadsUpdated = 0

        package init() {}
    }

    /// One interaction with everything the scorer computed for it.
    package struct ScoredInteraction: Sendable, Encodable {
        package var event: InteractionEvent
        package var score: Score
        package var lead: LeadCandidate

        package init(event: InteractionEvent, score: Score, lead: LeadCandidate) {
            self.event = event
            self.score = score
            self.lead = lead
        }

        enum CodingKeys: String, CodingKey {
            case eventID = "event_id", sessionID = "session_id", userID = "user_id", type
            case sourcePage = "source_page", data, occurredAt = "occurred_at", receivedAt = "received_at"
            case score, breakdown, canCreate = "can_create", source, procedureName = "procedure_name", message
            case name, email, phone, emailNormalized = "email_normalized", phoneNormalized = "phone_normalized"
        }

        package func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(event.eventID, forKey: .eventID)
            try container.encode(event.sessionID, forKey: .sessionID)
            try container.encodeIfPresent(event.userID, forKey: .userID)
            try container.encode(event.type, forKey: .type)
            try container.encodeIfPresent(event.sourcePage, forKey: .sourcePage)
            try container.encode(event.data, forKey: .data)
            try container.encode(event.occurredAt, forKey: .occurredAt)
            try container.encode(event.receivedAt, forKey: .receivedAt)
            try container.encode(score.value, forKey: .score)
            try container.encode(score.breakdown, forKey: .breakdown)
            try container.encode(lead.canCreateLead, forKey: .canCreate)
            try container.encodeIfPresent(lead.source, forKey: .source)
            try container.encodeIfPresent(lead.procedureName, forKey: .procedureName)
            try container.encodeIfPresent(lead.message, forKey: .message)
            try container.encodeIfPresent(lead.name, forKey: .name)
            try container.encodeIfPresent(lead.email, forKey: .email)
            try container.encodeIfPresent(lead.phone, forKey: .phone)
            try container.encodeIfPresent(lead.emailNormalized, forKey: .emailNormalized)
            try container.encodeIfPresent(lead.phoneNormalized, forKey: .phoneNormalized)
        }
    }

    let client: PostgresClient

    package init(client: PostgresClient) {
        self.client = client
    }

    /// Writes the batch in one transaction: interactions (idempotent on `event_id`), leads, ledger, outbox.
    package func process(_ batch: [ScoredInteraction], logger: Logger) async throws -> BatchResult {
        let json = String(decoding: try JSONCoding.encoder.encode(batch), as: UTF8.self)
        return try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query(
                "SELECT inserted, duplicates, leads_created, leads_updated FROM lead_process_events(\(json)::jsonb)",
                logger: logger
            )
            var result = BatchResult()
            for try await (inserted, duplicates, created, updated) in rows.decode((Int, Int, Int, Int).self) {
                result.inserted = inserted
                result.duplicates = duplicates
                result.leadsCreated = created
                result.leadsUpdated = updated
            }
            return result
        }
    }
}
