import Foundation
import Hummingbird
import LeadCore
import LeadService
import LeadStore
import Logging
import PostgresNIO

/// `GET /v1/sessions/{id}/prompt` (the web tier's question: ask this visitor now?) and the experiment read-out.
struct SessionsController: Sendable {
    let client: PostgresClient

    func addRoutes(to group: RouterGroup<BasicRequestContext>) {
        group.get("sessions/{id}/prompt", use: prompt)
        group.get("experiments/prompts", use: experiment)
    }

    @Sendable func prompt(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let sessionID = try context.parameters.require("id")
        let rows = try await client.query(
            """
            SELECT decision_prompt, decision_prompt_id, decision_reason, intent_score, variant, missing_fields
            FROM conversion_sessions WHERE session_id = \(sessionID)
            """,
            logger: context.logger
        )
        for try await (prompt, promptID, reason, intent, variant, fields) in rows.decode(
            (Bool, UUID?, String?, Int, String, [String]).self
        ) {
            return .json(
                .object([
                    "session_id": .string(sessionID), "prompt": .bool(prompt),
                    "prompt_id": promptID.map { .string($0.lowercasedString) } ?? .null,
                    "reason": JSONValue(reason), "intent_score": .int(Int64(intent)), "variant": .string(variant),
                    "fields": .array(fields.map { .string($0) }),
                ])
            )
        }
        throw APIError(.notFound, code: "not_found", "no interactions seen for this session yet")
    }

    @Sendable func experiment(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try .json(try await ExperimentStore.report(client: client, logger: context.logger))
    }
}
