import Foundation
import LeadCore
import Logging
import PostgresNIO

/// lead-conversion's tables, used inside one transaction per batch: claim the events (idempotency), lock the
/// sessions (in session-id order, so two workers never deadlock), then write states, prompts and the outbox.
package enum ConversionStore {
    /// The event ids not applied before; records them as applied.
    package static func claim(_ eventIDs: [UUID], on connection: PostgresConnection, logger: Logger) async throws -> Set<UUID> {
        var fresh = Set<UUID>()
        let rows = try await connection.query(
            """
            INSERT INTO conversion_processed (event_id) SELECT unnest(\(eventIDs)::uuid[])
            ON CONFLICT (event_id) DO NOTHING RETURNING event_id
            """,
            logger: logger
        )
        for try await id in rows.decode(UUID.self) { fresh.insert(id) }
        return fresh
    }

    /// Creates missing sessions and locks all of them; returns their current states.
    package static func lockSessions(
        _ sessionIDs: [String],
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [String: SessionState] {
        let sorted = sessionIDs.sorted()
        let fresh = sorted.map { SessionState(variant: .init(sessionID: $0)) }
        try await connection.query(
            """
            INSERT INTO conversion_sessions (session_id, variant, state)
            SELECT * FROM unnest(\(sorted)::text[], \(fresh.map(\.variant.rawValue))::text[], \(try fresh.map(encode))::jsonb[])
            ON CONFLICT (session_id) DO NOTHING
            """,
            logger: logger
        )
        var states: [String: SessionState] = [:]
        let rows = try await connection.query(
            "SELECT session_id, state::text FROM conversion_sessions WHERE session_id = ANY(\(sorted)) ORDER BY session_id FOR UPDATE",
            logger: logger
        )
        let decoder = JSONDecoder()
        for try await (sessionID, state) in rows.decode((String, String).self) {
            states[sessionID] = try decoder.decode(SessionState.self, from: Data(state.utf8))
        }
        return states
    }

    package struct SessionUpdate: Sendable {
        package var sessionID: String
        package var state: SessionState
        package var decision: PromptPolicy.Decision
        package var decidedAt: Date

        package init(sessionID: String, state: SessionState, decision: PromptPolicy.Decision, decidedAt: Date) {
            self.sessionID = sessionID
            self.state = state
            self.decision = decision
            self.decidedAt = decidedAt
        }
    }

    package struct NewPrompt: Sendable {
        package var id: UUID
        package var sessionID: String
        package var eventID: UUID
        package var variant: SessionState.Variant
        package var intentScore: Int
        package var reason: String
        package var fields: [String]
        package var createdAt: Date

        package init(
            id: UUID, sessionID: String, eventID: UUID, variant: SessionState.Variant, intentScore: Int, reason: String,
            fields: [String], createdAt: Date
        ) {
            self.id = id
            self.sessionID = sessionID
            self.eventID = eventID
            self.variant = variant
            self.intentScore = intentScore
            self.reason = reason
            self.fields = fields
            self.createdAt = createdAt
        }

        /// The `conversion.prompt` message (CONTRACT section 4).
        var message: JSONValue {
            .object([
                "prompt_id": .string(id.lowercasedString), "session_id": .string(sessionID),
                "intent_score": .int(Int64(intentScore)), "reason": .string(reason), "variant": .string(variant.rawValue),
                "fields": .array(fields.map { .string($0) }), "event_id": .string(eventID.lowercasedString),
                "created_at": .string(JSONCoding.formatTimestamp(createdAt)),
            ])
        }
    }

    package struct Converted: Sendable {
        package var promptID: UUID
        package var at: Date
        package var seconds: Double

        package init(promptID: UUID, at: Date, seconds: Double) {
            self.promptID = promptID
            self.at = at
            self.seconds = seconds
        }
    }

    /// Writes the batch's session states, prompts and prompt outcomes. Returns the prompts' `conversion.prompt`
    /// outbox rows, written leased to the caller (`OutboxStore.lease`) for it to publish once this commits.
    package static func write(
        sessions: [SessionUpdate],
        prompts: [NewPrompt],
        conversions: [Converted],
        withdrawals: [UUID] = [],
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [OutboxMessage] {
        var messages: [OutboxMessage] = []
        if !sessions.isEmpty {
            let rows: [JSONValue] = try sessions.map { update in
                .object([
                    "session_id": .string(update.sessionID),
                    "intent_score": .int(Int64(update.decision.intentScore)),
                    "interaction_count": .int(Int64(update.state.interactionCount)),
                    "contact_known": .bool(update.state.hasContact),
                    "prompts": .int(Int64(update.state.prompts)),
                    "last_prompt_at": update.state.lastPromptAt.map { .string(JSONCoding.formatTimestamp($0)) } ?? .null,
                    "decision_prompt": .bool(update.decision.prompt),
                    "decision_reason": .string(update.decision.reason),
                    "decision_prompt_id": update.decision.promptID.map { .string($0.lowercasedString) } ?? .null,
                    "decided_at": .string(JSONCoding.formatTimestamp(update.decidedAt)),
                    "missing_fields": .array(update.state.missingFields.map { .string($0) }),
                    "state": try JSONParser.parse(encode(update.state).utf8),
                ])
            }
            // `= ANY(ids)` gives the planner the rows to fetch by key: it estimates 100 rows for jsonb_to_recordset
            // and, on a small table, read every session to hash-join them (8,625 rows per batch in the benchmark).
            try await connection.query(
                """
                UPDATE conversion_sessions s SET
                    intent_score = x.intent_score, interaction_count = x.interaction_count,
                    contact_known = x.contact_known, prompts = x.prompts, last_prompt_at = x.last_prompt_at,
                    decision_prompt = x.decision_prompt, decision_reason = x.decision_reason,
                    decision_prompt_id = x.decision_prompt_id, decided_at = x.decided_at,
                    missing_fields = x.missing_fields, state = x.state, updated_at = now()
                FROM jsonb_to_recordset(\(JSONWriter.string(.array(rows)))::jsonb) AS x(
                    session_id TEXT, intent_score INTEGER, interaction_count INTEGER, contact_known BOOLEAN, prompts INTEGER,
                    last_prompt_at TIMESTAMPTZ, decision_prompt BOOLEAN, decision_reason TEXT, decision_prompt_id UUID,
                    decided_at TIMESTAMPTZ, missing_fields TEXT[], state JSONB)
                WHERE s.session_id = x.session_id AND s.session_id = ANY(\(sessions.map(\.sessionID)))
                """,
                logger: logger
            )
        }
        if !prompts.isEmpty {
            let rows: [JSONValue] = prompts.map { prompt in
                .object([
                    "id": .string(prompt.id.uuidString), "session_id": .string(prompt.sessionID),
                    "event_id": .string(prompt.eventID.uuidString), "variant": .string(prompt.variant.rawValue),
                    "intent_score": .int(Int64(prompt.intentScore)), "reason": .string(prompt.reason),
                    "fields": .array(prompt.fields.map { .string($0) }),
                    "created_at": .string(JSONCoding.formatTimestamp(prompt.createdAt)),
                ])
            }
            try await connection.query(
                """
                INSERT INTO conversion_prompts (id, session_id, event_id, variant, intent_score, reason, fields, created_at)
                SELECT id, session_id, event_id, variant, intent_score, reason, fields, created_at
                FROM jsonb_to_recordset(\(JSONWriter.string(.array(rows)))::jsonb) AS x(
                    id UUID, session_id TEXT, event_id UUID, variant TEXT, intent_score INTEGER, reason TEXT,
                    fields TEXT[], created_at TIMESTAMPTZ)
                """,
                logger: logger
            )
            messages = try await OutboxStore.messages(
                connection.query(
                    """
                    INSERT INTO outbox (exchange, routing_key, body, leased_until)
                    SELECT 'leads.events', 'conversion.prompt', value, now() + make_interval(secs => \(OutboxStore.leaseSeconds))
                    FROM jsonb_array_elements(\(JSONWriter.string(.array(prompts.map(\.message))))::jsonb)
                    RETURNING id, message_id, exchange, routing_key, body::text
                    """,
                    logger: logger
                )
            )
        }
        if !withdrawals.isEmpty {
            try await connection.query(
                "UPDATE conversion_prompts SET status = 'withdrawn' WHERE id = ANY(\(withdrawals)) AND status = 'open'",
                logger: logger
            )
        }
        if !conversions.isEmpty {
            try await connection.query(
                """
                UPDATE conversion_prompts p SET status = 'converted', converted_at = x.at, conversion_seconds = x.seconds
                FROM unnest(\(conversions.map(\.promptID))::uuid[], \(conversions.map(\.at))::timestamptz[],
                            \(conversions.map(\.seconds))::float8[]) AS x(id, at, seconds)
                WHERE p.id = x.id AND p.status = 'open'
                """,
                logger: logger
            )
        }
        return messages
    }

    /// Counts prompts left unanswered for `window` as not converted.
    package static func expirePrompts(olderThan window: Duration, client: PostgresClient, logger: Logger) async throws -> Int {
        let seconds = Double(window.components.seconds)
        let rows = try await client.query(
            """
            WITH expired AS (
                UPDATE conversion_prompts SET status = 'expired'
                WHERE status = 'open' AND created_at < now() - make_interval(secs => \(seconds))
                RETURNING 1)
            SELECT count(*) FROM expired
            """,
            logger: logger
        )
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }

    static func encode(_ state: SessionState) throws -> String {
        String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
    }
}
