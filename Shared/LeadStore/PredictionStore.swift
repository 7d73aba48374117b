import Foundation
import LeadCore
import Logging
import PostgresNIO

/// Training data, versioned models and simulated histories for predictive lead quality (007_prediction.sql).
package enum PredictionStore {
    package struct Example: Sendable {
        package var leadID: Int64
        package var createdAt: Date
        package var converted: Bool
        package var ruleScore: Int
        package var features: [Double]
    }

    package static func featureNames(client: PostgresClient, logger: Logger) async throws -> [String] {
        for try await names in try await client.query("SELECT lead_feature_names()", logger: logger).decode([String].self) {
            return names
        }
        return []
    }

    /// Labelled leads created in `from..<to`, oldest first: `booked`/`converted` are positive; `lost`, or
    /// still open `labelWindowDays` after creation, negative; younger open leads are left out. Time-dependent
    /// features are taken one day after creation (or at the outcome, if sooner), as the scorer sees a fresh
    /// lead: measuring them at the outcome would let the label's own timing leak into them.
    package static func examples(
        from: Date,
        to: Date,
        labelWindowDays: Int,
        client: PostgresClient,
        logger: Logger
    ) async throws -> [Example] {
        let window = Double(labelWindowDays) * 86_400
        let rows = try await client.query(
            """
            WITH labelled AS (
                SELECT id, created_at, lead_score, status_changed_at,
                       CASE WHEN status IN ('booked', 'converted') THEN true
                            WHEN status = 'lost' THEN false
                            WHEN created_at < now() - make_interval(secs => \(window)) THEN false END AS label
                FROM leads WHERE created_at >= \(from) AND created_at < \(to)
            ), examples AS (
                SELECT * FROM labelled WHERE label IS NOT NULL
            )
            SELECT e.id, e.created_at, e.label, e.lead_score, f.features
            FROM examples e
            JOIN lead_features_for(
                (SELECT array_agg(id ORDER BY id) FROM examples),
                (SELECT array_agg(lead_score ORDER BY id) FROM examples),
                (SELECT array_agg(LEAST(COALESCE(status_changed_at, 'infinity'), created_at + interval '1 day', now()) ORDER BY id) FROM examples)
            ) f ON f.lead_id = e.id
            ORDER BY e.created_at, e.id
            """,
            logger: logger
        )
        var examples: [Example] = []
        for try await (id, createdAt, label, score, features) in rows.decode((Int64, Date, Bool, Int, [Double]).self) {
            examples.append(Example(leadID: id, createdAt: createdAt, converted: label, ruleScore: score, features: features))
        }
        return examples
    }

    package struct StoredModel: Sendable {
        package var id: Int
        package var createdAt: Date
        package var active: Bool
        package var model: LogisticRegression
        package var features: [String]
        package var metrics: String
    }

    /// Saves a trained model (inactive); returns its version number.
    package static func save(
        _ model: LogisticRegression,
        features: [String],
        metrics: JSONValue,
        window: JSONValue,
        client: PostgresClient,
        logger: Logger
    ) async throws -> Int {
        let rows = try await client.query(
            """
            INSERT INTO prediction_models (features, means, scales, weights, intercept, metrics, training_window)
            VALUES (\(features), \(model.means), \(model.scales), \(model.weights), \(model.intercept),
                    \(JSONWriter.string(metrics))::jsonb, \(JSONWriter.string(window))::jsonb)
            RETURNING id
            """,
            logger: logger
        )
        for try await id in rows.decode(Int.self) { return id }
        throw PostgresStoreError("the model was not stored")
    }

    /// Makes model `id` the one the scorer uses (the previous one is deactivated in the same transaction).
    package static func activate(_ id: Int, client: PostgresClient, logger: Logger) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("UPDATE prediction_models SET active = false WHERE active", logger: logger)
            var found = false
            for try await _ in try await connection.query(
                "UPDATE prediction_models SET active = true, activated_at = now() WHERE id = \(id) RETURNING id",
                logger: logger
            ).decode(Int.self) {
                found = true
            }
            guard found else { throw PostgresStoreError("no model \(id)") }
            return found
        }
    }

    package static func deactivate(client: PostgresClient, logger: Logger) async throws {
        try await client.query("UPDATE prediction_models SET active = false WHERE active", logger: logger)
    }

    package static func list(client: PostgresClient, logger: Logger) async throws -> [StoredModel] {
        var models: [StoredModel] = []
        for try await (id, createdAt, active, features, means, scales, weights, intercept, metrics) in try await client.query(
            "SELECT id, created_at, active, features, means, scales, weights, intercept, metrics::text FROM prediction_models ORDER BY id",
            logger: logger
        ).decode((Int, Date, Bool, [String], [Double], [Double], [Double], Double, String).self) {
            models.append(
                StoredModel(
                    id: id, createdAt: createdAt, active: active,
                    model: LogisticRegression(means: means, scales: scales, weights: weights, intercept: intercept),
                    features: features, metrics: metrics
                )
            )
        }
        return models
    }

    /// Writes a simulated history (leads, interactions scored by `scorer`, sessions, prompts, outcomes) in
    /// chunks of 500 leads, each in one transaction.
    package static func insert(
        simulation leads: [LeadSimulation.Lead],
        seed: UInt64,
        scorer: InteractionScorer,
        client: PostgresClient,
        logger: Logger,
        progress: @Sendable (Int) -> Void = { _ in }
    ) async throws {
        var done = 0
        for chunkStart in stride(from: 0, to: leads.count, by: 500) {
            let chunk = Array(leads[chunkStart..<min(chunkStart + 500, leads.count)])
            try await client.withTransaction(logger: logger) { connection in
                let leadRows: [JSONValue] = chunk.map { lead in
                    let contact = lead.interactions.last { $0.sessionIndex == 0 && $0.type == lead.type }
                    let score = scorer.score(type: lead.type, data: contact?.data.objectValue ?? [:])
                    let distinct = Set(lead.interactions.map(\.type)).count
                    let total = min(100, score.value + 5 * max(0, distinct - 1))
                    return .object([
                        "name": .string("Sim \(seed)-\(lead.index)"), "source": JSONValue(lead.type.leadSource),
                        "procedure": JSONValue(contact.flatMap { ProcedureExtractor.distinctProcedures(in: $0.data.objectValue ?? [:]).sorted().first }),
                        "score": .int(Int64(total)), "engagement": .string(EngagementLevel(score: total).rawValue),
                        "status": .string(lead.status), "session": .string(session(seed, lead, 0)),
                        "created_at": .string(JSONCoding.formatTimestamp(lead.createdAt)),
                        "changed_at": lead.statusChangedAt.map { .string(JSONCoding.formatTimestamp($0)) } ?? .null,
                        "last_at": .string(JSONCoding.formatTimestamp(lead.interactions.map(\.occurredAt).max() ?? lead.createdAt)),
                    ])
                }
                var ids: [String: Int64] = [:]
                for try await (id, session) in try await connection.query(
                    """
                    INSERT INTO leads (patient_name, source, procedure_name, lead_score, engagement_level, status, session_id,
                                       created_at, updated_at, status_changed_at, last_interaction_at)
                    SELECT name, source, procedure, score, engagement, status, session, created_at, created_at, changed_at, last_at
                    FROM jsonb_to_recordset(\(JSONWriter.string(.array(leadRows)))::jsonb) AS x(
                        name TEXT, source TEXT, procedure TEXT, score INTEGER, engagement TEXT, status TEXT, session TEXT,
                        created_at TIMESTAMPTZ, changed_at TIMESTAMPTZ, last_at TIMESTAMPTZ)
                    RETURNING id, session_id
                    """,
                    logger: logger
                ).decode((Int64, String).self) {
                    ids[session] = id
                }
                var interactionRows: [JSONValue] = []
                var sessionRows: [JSONValue] = []
                var promptRows: [JSONValue] = []
                for lead in chunk {
                    guard let leadID = ids[session(seed, lead, 0)] else { continue }
                    for interaction in lead.interactions {
                        let score = scorer.score(type: interaction.type, data: interaction.data.objectValue ?? [:])
                        interactionRows.append(.object([
                            "event_id": .string(interaction.eventID.uuidString), "session": .string(session(seed, lead, interaction.sessionIndex)),
                            "type": .string(interaction.type.rawValue), "lead_id": .int(leadID), "score": .int(Int64(score.value)),
                            "breakdown": .array(score.breakdown.map { .object(["rule": .string($0.rule), "points": .int(Int64($0.points))]) }),
                            "modifiers": .int(Int64(score.modifierBits)),
                            "data": interaction.data, "occurred_at": .string(JSONCoding.formatTimestamp(interaction.occurredAt)),
                        ]))
                    }
                    for index in 0..<lead.sessions {
                        sessionRows.append(.object([
                            "session": .string(session(seed, lead, index)), "lead_id": .int(leadID),
                            "variant": .string(lead.variantB ? "B" : "A"),
                            "created_at": .string(JSONCoding.formatTimestamp(lead.interactions.first?.occurredAt ?? lead.createdAt)),
                        ]))
                    }
                    if lead.prompted {
                        promptRows.append(.object([
                            "session": .string(session(seed, lead, 0)), "variant": .string(lead.variantB ? "B" : "A"),
                            "event_id": .string(lead.interactions.last?.eventID.uuidString ?? UUID.random().uuidString),
                            "status": .string(["booked", "converted"].contains(lead.status) ? "converted" : "expired"),
                            "created_at": .string(JSONCoding.formatTimestamp(lead.createdAt.addingTimeInterval(-600))),
                        ]))
                    }
                }
                try await connection.query(
                    """
                    INSERT INTO user_interactions (event_id, session_id, interaction_type, lead_id, converted_to_lead, score,
                                                   score_breakdown, modifiers, data, occurred_at, received_at)
                    SELECT event_id, session, type, lead_id, true, score, breakdown, modifiers, data, occurred_at, occurred_at
                    FROM jsonb_to_recordset(\(JSONWriter.string(.array(interactionRows)))::jsonb) AS x(
                        event_id UUID, session TEXT, type TEXT, lead_id BIGINT, score INTEGER, breakdown JSONB,
                        modifiers SMALLINT, data JSONB, occurred_at TIMESTAMPTZ)
                    ON CONFLICT (event_id) DO NOTHING
                    """,
                    logger: logger
                )
                try await connection.query(
                    """
                    WITH s AS (
                        SELECT * FROM jsonb_to_recordset(\(JSONWriter.string(.array(sessionRows)))::jsonb)
                            AS x(session TEXT, lead_id BIGINT, variant TEXT, created_at TIMESTAMPTZ)
                    ), linked AS (
                        INSERT INTO session_leads (session_id, lead_id) SELECT session, lead_id FROM s ON CONFLICT DO NOTHING
                    )
                    INSERT INTO conversion_sessions (session_id, variant, state, contact_known, created_at, updated_at)
                    SELECT session, variant, '{}', true, created_at, created_at FROM s ON CONFLICT DO NOTHING
                    """,
                    logger: logger
                )
                if !promptRows.isEmpty {
                    try await connection.query(
                        """
                        INSERT INTO conversion_prompts (id, session_id, event_id, variant, intent_score, reason, fields, status, created_at)
                        SELECT gen_random_uuid(), session, event_id, variant, 80, 'simulated', '{name,phone,email}', status, created_at
                        FROM jsonb_to_recordset(\(JSONWriter.string(.array(promptRows)))::jsonb)
                            AS x(session TEXT, variant TEXT, event_id UUID, status TEXT, created_at TIMESTAMPTZ)
                        ON CONFLICT DO NOTHING
                        """,
                        logger: logger
                    )
                }
            }
            done += chunk.count
            progress(done)
        }
    }

    private static func session(_ seed: UInt64, _ lead: LeadSimulation.Lead, _ index: Int) -> String {
        "sim-\(seed)-\(lead.index)-\(index)"
    }
}

package struct PostgresStoreError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
