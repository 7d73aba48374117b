import AMQP
import Foundation
import HTTPTypes
import LeadCore
import LeadService
import Logging
import PostgresNIO

/// Records a CRM outcome (`contacted`, `booked`, `converted`, `lost`) from the API or a `lead.outcome` message.
/// The latest outcome by `occurred_at` sets the lead's status; a message seen twice is recorded once.
struct OutcomeRecorder: Sendable {
    static let statuses = ["contacted", "booked", "converted", "lost"]

    enum Via: String {
        case api
        case message
    }

    let client: PostgresClient

    /// The lead's status afterwards, or nil when there is no such lead.
    func record(leadID: Int64, status: String, occurredAt: Date, via: Via, messageID: String?, logger: Logger) async throws -> String? {
        do {
            return try await client.withTransaction(logger: logger) { connection -> String? in
                try await connection.query(
                    """
                    INSERT INTO lead_outcomes (lead_id, status, occurred_at, reported_via, message_id)
                    SELECT id, \(status), \(occurredAt), \(via.rawValue), \(messageID) FROM leads WHERE id = \(leadID)
                    ON CONFLICT (message_id) DO NOTHING
                    """,
                    logger: logger
                )
                try await connection.query(
                    """
                    UPDATE leads SET status = \(status), status_changed_at = \(occurredAt), updated_at = now()
                    WHERE id = \(leadID) AND (status_changed_at IS NULL OR status_changed_at <= \(occurredAt))
                    """,
                    logger: logger
                )
                for try await current in try await connection.query("SELECT status FROM leads WHERE id = \(leadID)", logger: logger).decode(String.self) {
                    return current
                }
                return nil
            }
        } catch let error as PostgresTransactionError {
            if let psql = error.closureError as? PSQLError, psql.serverInfo?[.sqlState] == "23505" {
                throw APIError(.conflict, code: "conflict", "this person already has another open lead; close it first")
            }
            throw error
        }
    }
}

/// Consumes `lead.outcome` messages from CRMs (queue `admin.outcomes`).
struct OutcomeHandler: DeliveryHandler {
    struct Outcome: Sendable {
        var leadID: Int64
        var status: String
        var occurredAt: Date
        var messageID: String?
    }

    let recorder: OutcomeRecorder

    func decode(_ delivery: Delivery) throws(PermanentFailure) -> Outcome {
        guard let body = try? JSONParser.parse(delivery.body), let leadID = body["lead_id"]?.int64Value,
            let status = body["status"]?.stringValue, OutcomeRecorder.statuses.contains(status)
        else {
            throw PermanentFailure("a lead.outcome needs lead_id and a status of contacted, booked, converted or lost")
        }
        let occurredAt = body["occurred_at"]?.stringValue.flatMap(JSONCoding.parseTimestamp) ?? Date()
        return Outcome(leadID: leadID, status: status, occurredAt: occurredAt, messageID: delivery.messageID)
    }

    func handle(_ outcomes: [Outcome], logger: Logger) async throws {
        for outcome in outcomes {
            do {
                let applied = try await recorder.record(
                    leadID: outcome.leadID, status: outcome.status, occurredAt: outcome.occurredAt, via: .message,
                    messageID: outcome.messageID, logger: logger
                )
                if applied == nil { throw PermanentFailure("lead \(outcome.leadID) does not exist") }
            } catch let error as APIError {
                throw PermanentFailure(error.message)
            }
        }
    }
}
