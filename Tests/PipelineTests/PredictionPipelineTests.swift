import AMQP
import Foundation
import LeadCore
import LeadStore
import Logging
import PostgresNIO
import Testing

/// Predictive lead quality end to end: `leadctl simulate` and `leadctl train` on a database of their own (so
/// no other test's leads change what is learnt), then the model activated on the shared stack, where the
/// scorer writes `conversion_probability` and `lead.scored` carries it.
@Suite struct PredictionPipelineTests {
    @Test func trainedModelBeatsTheRuleScoreAndTheScorerUsesIt() async throws {
        let stack = try await SharedStack.shared.start()
        let name = "leads_predict_\(UUID().uuidString.prefix(8).lowercased())"
        try await TestDatabase.client.query("CREATE DATABASE \(unescaped: name)", logger: TestDatabase.logger)
        let shared = TestEnvironment.databaseURL
        let privateURL = String(shared[..<shared.lastIndex(of: "/")!]) + "/" + name

        #expect(try await LeadCtl.run(["migrate"], databaseURL: privateURL, label: "predict-migrate").status == 0)
        let simulated = try await LeadCtl.run(["simulate", "--leads", "8000", "--seed", "5"], databaseURL: privateURL, label: "predict-simulate")
        #expect(simulated.status == 0, "\(simulated.output.suffix(500))")
        let first = try await LeadCtl.run(["train", "--json"], databaseURL: privateURL, label: "predict-train-1")
        let second = try await LeadCtl.run(["train", "--json"], databaseURL: privateURL, label: "predict-train-2")
        let report = try #require(LeadCtl.lastJSON(first.output), "\(first.output.suffix(800))")
        let again = try #require(LeadCtl.lastJSON(second.output))

        let modelAUC = try #require((report["model"] as? [String: Any])?["auc"] as? Double)
        let ruleAUC = try #require((report["rule_score_only"] as? [String: Any])?["auc"] as? Double)
        #expect(modelAUC >= 0.80, "holdout AUC \(modelAUC)")
        #expect(modelAUC > ruleAUC, "model \(modelAUC) against the rule score \(ruleAUC)")
        #expect(report["converged"] as? Bool == true)
        let weights = try #require(report["weights"] as? [String: Double])
        // The generating model's signs (LeadSimulation): more browsing, a return visit, urgency and budget
        // help; a slow first contact and the cost calculator hurt; appointment bookings help.
        for feature in ["urgency_immediate", "budget_high", "log_page_view", "log_sessions", "source_appointment_booking"] {
            #expect((weights[feature] ?? 0) > 0, "\(feature): \(weights[feature] ?? .nan)")
        }
        for feature in ["log_hours_first_to_contact", "source_cost_calculator"] {
            #expect((weights[feature] ?? 0) < 0, "\(feature): \(weights[feature] ?? .nan)")
        }
        #expect(weights == again["weights"] as? [String: Double], "the same data trained twice")

        // The model on the private database: a lead with no history still gets a finite probability.
        let modelID = try #require(report["model_id"] as? Int)
        #expect(try await LeadCtl.run(["model", "activate", "\(modelID)"], databaseURL: privateURL, label: "predict-activate").status == 0)
        let privateDB = PostgresClient(
            configuration: try DatabaseConfiguration(url: privateURL).clientConfiguration, backgroundLogger: Logger(label: "test-db")
        )
        let runner = Task.detached { await privateDB.run() }
        let bare = try await privateDB.count("INSERT INTO leads (patient_name) VALUES ('No History') RETURNING id")
        var probability: Double?
        for try await value in try await privateDB.query(
            "SELECT lead_predict_features(lead_features(\(bare), 50, now()))", logger: TestDatabase.logger
        ).decode(Double?.self) {
            probability = value
        }
        #expect(probability.map { $0.isFinite && $0 > 0 && $0 < 1 } == true, "\(String(describing: probability))")
        // The features the scorer and training read (two hash aggregations, stored modifier bits) equal the plain
        // definition: count(DISTINCT), and the modifiers looked up in each breakdown.
        let differing = try await privateDB.count(
            """
            WITH sample AS (SELECT id, lead_score FROM leads ORDER BY id LIMIT 500),
            ui AS (
                SELECT u.lead_id,
                    ARRAY[count(*) FILTER (WHERE interaction_type = 'ai_recommendation'),
                          count(*) FILTER (WHERE interaction_type = 'face_analysis'),
                          count(*) FILTER (WHERE interaction_type = 'cost_calculator'),
                          count(*) FILTER (WHERE interaction_type = 'appointment_booking'),
                          count(*) FILTER (WHERE interaction_type = 'package_inquiry'),
                          count(*) FILTER (WHERE interaction_type = 'consultation'),
                          count(*) FILTER (WHERE interaction_type = 'search'),
                          count(*) FILTER (WHERE interaction_type = 'page_view'),
                          count(*) FILTER (WHERE interaction_type = 'registration'),
                          count(*) FILTER (WHERE interaction_type = 'community_engagement'),
                          count(*) FILTER (WHERE interaction_type = 'prompt_dismissed')] AS counts,
                    count(DISTINCT interaction_type) AS types,
                    bool_or(score_breakdown @> '[{"rule": "budget_range:high"}]') AS budget,
                    bool_or(score_breakdown @> '[{"rule": "urgency:immediate"}]') AS urgency,
                    bool_or(score_breakdown @> '[{"rule": "multiple_procedures"}]') AS multiple,
                    min(occurred_at) AS first_at, max(occurred_at) AS last_at, count(DISTINCT session_id) AS sessions
                FROM user_interactions u JOIN sample s ON s.id = u.lead_id GROUP BY u.lead_id
            ), p AS (
                SELECT sl.lead_id, count(cp.id) > 0 AS prompted, bool_or(cs.variant = 'B') AS variant_b
                FROM session_leads sl JOIN sample s ON s.id = sl.lead_id
                LEFT JOIN conversion_prompts cp ON cp.session_id = sl.session_id
                LEFT JOIN conversion_sessions cs ON cs.session_id = sl.session_id
                GROUP BY sl.lead_id
            ), plain AS (
                SELECT s.id, lead_feature_vector(s.lead_score, ui.counts, ui.types, l.source, ui.budget, ui.urgency, ui.multiple,
                    l.created_at, ui.first_at, ui.last_at, ui.sessions, p.prompted, p.variant_b,
                    timestamptz '2026-01-01 12:00+00') AS features
                FROM sample s JOIN leads l ON l.id = s.id LEFT JOIN ui ON ui.lead_id = s.id LEFT JOIN p ON p.lead_id = s.id
            )
            SELECT count(*) FROM plain
            JOIN lead_features_for((SELECT array_agg(id) FROM sample), (SELECT array_agg(lead_score) FROM sample),
                                   (SELECT array_agg(timestamptz '2026-01-01 12:00+00') FROM sample)) f ON f.lead_id = plain.id
            WHERE f.features IS DISTINCT FROM plain.features
            """
        )
        #expect(differing == 0, "\(differing) of 500 leads have features other than the plain definition's")
        let unmarked = try await privateDB.count(
            "SELECT count(*) FROM user_interactions WHERE modifiers IS DISTINCT FROM lead_modifiers(score_breakdown)"
        )
        #expect(unmarked == 0, "\(unmarked) simulated interactions store other modifier bits than their breakdown shows")

        // The same model on the shared stack: the scorer uses it at once, no restart.
        var columns: (String, [String], [Double], [Double], [Double], Double)?
        for try await row in try await privateDB.query(
            "SELECT metrics::text, features, means, scales, weights, intercept FROM prediction_models WHERE id = \(modelID)",
            logger: TestDatabase.logger
        ).decode((String, [String], [Double], [Double], [Double], Double).self) {
            columns = row
        }
        runner.cancel()
        let (metrics, features, means, scales, modelWeights, intercept) = try #require(columns)
        let sharedID = try await TestDatabase.count(
            """
            INSERT INTO prediction_models (features, means, scales, weights, intercept, metrics, training_window)
            VALUES (\(features), \(means), \(scales), \(modelWeights), \(intercept), \(metrics)::jsonb, '{"copied_from_test": true}')
            RETURNING id
            """
        )
        #expect(try await LeadCtl.run(["model", "activate", "\(sharedID)"], label: "predict-activate-shared").status == 0)
        let tap = try await EventTap(routingKeys: ["lead.scored", "lead.created", "lead.updated"])
        let email = "predict-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        let session = "predict-\(UUID().uuidString.prefix(8))"
        // The session's A/B variant is a feature, and lead-conversion stores it when it first sees the session,
        // concurrently with the scorer: an anonymous visit first, and the variant stored, so the features the
        // scorer predicts from are the ones the check below recomputes.
        let visit = try await HTTP.postJSON(stack.ingest + "/v1/interactions", ["session_id": session, "type": "page_view"])
        #expect(visit.status == 202)
        _ = try await eventually("lead-conversion stores session \(session)") {
            try await TestDatabase.scalar("SELECT variant FROM conversion_sessions WHERE session_id = \(session)", as: String.self)
        }
        let response = try await HTTP.postJSON(stack.ingest + "/v1/interactions", [
            "session_id": session, "type": "face_analysis",
            "contact": ["name": "Prediction Test", "email": email], "data": ["urgency": "immediate"],
        ])
        #expect(response.status == 202)
        let leadID = try await eventually("a lead for \(email) with a probability") {
            try await TestDatabase.scalar(
                "SELECT id FROM leads WHERE email_normalized = \(email) AND conversion_probability IS NOT NULL", as: Int64.self
            )
        }
        let scored = try await eventually("lead.scored for lead \(leadID)") {
            tap.messages(routingKey: "lead.scored") { ($0["lead_id"] as? Int).map(Int64.init) == leadID }.first
        }
        let body = try #require((try? JSONSerialization.jsonObject(with: scored.body)) as? [String: Any])
        let carried = try #require(body["conversion_probability"] as? Double)
        #expect(carried > 0 && carried < 1)
        // The scorer predicts at the end of the batch (set-based): the same value as the model applied to the
        // lead's features at that moment (updated_at is the batch's now()), and the modifier bits it stored.
        let reference = try await TestDatabase.scalar(
            """
            SELECT abs(conversion_probability - lead_predict_features(lead_features(id, lead_score, updated_at)))
            FROM leads WHERE id = \(leadID)
            """,
            as: Double.self
        )
        #expect(reference.map { $0 < 1e-12 } == true, "stored probability differs from the model's by \(String(describing: reference))")
        let stored = try await TestDatabase.scalar("SELECT conversion_probability FROM leads WHERE id = \(leadID)", as: Double.self)
        // jsonb keeps a float8 to 15 significant digits (PostgreSQL's float8 to numeric).
        #expect(stored.map { abs($0 - carried) < 1e-12 } == true, "lead.scored carried \(carried), the lead has \(String(describing: stored))")
        // lead.created left the batch after the prediction step: it is the row as the batch left it, with the
        // probability and the step's updated_at (the step patches the body instead of rebuilding it).
        let (createdBody, rowBody) = try await bodyAndRow("lead.created", lead: leadID, tap: tap)
        #expect(createdBody == rowBody, "lead.created \(createdBody) is not the row \(rowBody)")
        // A second face analysis in the session, without contact: the score and everything the lead shows stay,
        // only its probability moves (one more interaction of that type). The batch has no body about the lead,
        // so the step announces it with lead.updated made from the row it wrote.
        let repeated = try await HTTP.postJSON(stack.ingest + "/v1/interactions", [
            "session_id": session, "type": "face_analysis", "data": ["urgency": "immediate"],
        ])
        #expect(repeated.status == 202)
        let (updatedBody, updatedRowBody) = try await bodyAndRow("lead.updated", lead: leadID, tap: tap)
        #expect(updatedBody == updatedRowBody, "lead.updated \(updatedBody) is not the row \(updatedRowBody)")
        #expect(updatedBody["conversion_probability"] as? Double != carried, "the probability did not move")
        let bits = try await TestDatabase.scalar(
            """
            SELECT modifiers FROM user_interactions
            WHERE lead_id = \(leadID) AND interaction_type = 'face_analysis' AND modifiers = lead_modifiers(score_breakdown)
            """,
            as: Int16.self
        )
        #expect(bits == 2, "urgency:immediate is bit 2; stored \(String(describing: bits))")
        #expect(try await LeadCtl.run(["model", "deactivate"], label: "predict-deactivate").status == 0)
        await tap.close()
        // Cleanup only (make test wipes the cluster anyway): a failure here is reported, not fatal.
        do {
            try await TestDatabase.client.query("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)", logger: TestDatabase.logger)
        } catch {
            print("could not drop \(name): \(String(reflecting: error))")
        }
    }

    /// The first `routingKey` message about lead `id` on the tap, and the lead's row as `lead_json` gives it now.
    private func bodyAndRow(_ routingKey: String, lead id: Int64, tap: EventTap) async throws -> (body: NSDictionary, row: NSDictionary) {
        let message = try await eventually("\(routingKey) for lead \(id)") {
            tap.messages(routingKey: routingKey) { ($0["id"] as? Int).map(Int64.init) == id }.first
        }
        let row = try #require(try await TestDatabase.scalar("SELECT lead_json(l)::text FROM leads l WHERE id = \(id)", as: String.self))
        let body = try #require((try? JSONSerialization.jsonObject(with: message.body)) as? NSDictionary)
        return (body, try #require((try? JSONSerialization.jsonObject(with: Data(row.utf8))) as? NSDictionary))
    }
}
