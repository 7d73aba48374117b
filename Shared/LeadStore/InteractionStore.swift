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

    /// One interaction with everything the scorer computed for it, and its element of the batch's JSON (written
    /// when the interaction is scored, before its batch's turn at the database).
    package struct ScoredInteraction: Sendable {
        package let event: InteractionEvent
        package let score: Score
        package let lead: LeadCandidate
        let json: String

        package init(event: InteractionEvent, score: Score, lead: LeadCandidate) {
            self.event = event
            self.score = score
            self.lead = lead
            json = JSONWriter.string(Self.jsonValue(event: event, score: score, lead: lead))
        }

        /// The element `lead_process_events` reads (see 012_scorer_fewer_statements.sql and 014).
        private static func jsonValue(event: InteractionEvent, score: Score, lead: LeadCandidate) -> JSONValue {
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
    }

    let connection: DedicatedConnection

    package init(connection: DedicatedConnection) {
        self.connection = connection
    }

    /// Writes the batch in one transaction: interactions (idempotent on `event_id`), leads, ledger, outbox.
    package func process(_ batch: [ScoredInteraction], logger: Logger) async throws -> BatchResult {
        let json = "[" + batch.map(\.json).joined(separator: ",") + "]"
        return try await connection.withTransaction(logger: logger) { connection in
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

    package func close() async {
        await connection.close()
    }
}
