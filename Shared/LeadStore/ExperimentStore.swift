import LeadCore
import Logging
import PostgresNIO

/// The prompt experiment's counts per variant, as `ExperimentReport` reads them.
package enum ExperimentStore {
    package static func report(client: PostgresClient, logger: Logger) async throws -> ExperimentReport {
        let rows = try await client.query(
            """
            SELECT s.variant, count(*)::int8, COALESCE(sum(s.prompts), 0)::int8,
                   (count(*) FILTER (WHERE s.prompts > 0))::int8,
                   (count(*) FILTER (WHERE EXISTS (
                       SELECT 1 FROM conversion_prompts p WHERE p.session_id = s.session_id AND p.status = 'converted')))::int8
            FROM conversion_sessions s GROUP BY s.variant ORDER BY s.variant
            """,
            logger: logger
        )
        var counts: [(variant: String, sessions: Int, prompts: Int, promptedSessions: Int, conversions: Int)] = []
        for try await (variant, sessions, prompts, prompted, conversions) in rows.decode((String, Int, Int, Int, Int).self) {
            counts.append((variant, sessions, prompts, prompted, conversions))
        }
        for variant in SessionState.Variant.allCases where !counts.contains(where: { $0.variant == variant.rawValue }) {
            counts.append((variant.rawValue, 0, 0, 0, 0))
        }
        return ExperimentReport(counts: counts.sorted { $0.variant < $1.variant })
    }
}
