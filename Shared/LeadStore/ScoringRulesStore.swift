import LeadCore
import Logging
import PostgresNIO

/// Reads the active rows of `lead_scoring_rules`.
package struct ScoringRulesStore: Sendable {
    let client: PostgresClient

    package init(client: PostgresClient) {
        self.client = client
    }

    /// The active rules; types without an active row score 0.
    package func load(logger: Logger) async throws -> ScoringRules {
        var points: [InteractionType: Int] = [:]
        let rows = try await client.query(
            "SELECT interaction_type, points FROM lead_scoring_rules WHERE is_active",
            logger: logger
        )
        for try await (type, value) in rows.decode((String, Int).self) {
            if let type = InteractionType(rawValue: type) { points[type] = value }
        }
        return ScoringRules(points: points)
    }
}
