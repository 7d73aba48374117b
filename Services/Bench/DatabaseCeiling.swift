import Foundation
import Logging
import PostgresNIO

/// PostgreSQL's own ceiling for interaction rows: one client, 100-row INSERT statements (`unnest` of array
/// binds) into a copy of `user_interactions` with the same indexes.
struct DatabaseCeiling {
    let client: PostgresClient
    let logger: Logger

    func measure(rows: Int) async throws -> Double {
        try await client.query("DROP TABLE IF EXISTS bench_ceiling", logger: logger)
        try await client.query("CREATE TABLE bench_ceiling (LIKE user_interactions INCLUDING DEFAULTS INCLUDING INDEXES)", logger: logger)
        let data = #"{"recommendations": [{"procedure": "Rhinoplasty"}], "urgency": "immediate"}"#
        let started = ContinuousClock.now
        for chunk in stride(from: 0, to: rows, by: 100) {
            let count = min(100, rows - chunk)
            let ids = (0..<count).map { _ in UUID() }
            let sessions = (0..<count).map { "bench-\(chunk + $0 % 37)" }
            let types = Array(repeating: "face_analysis", count: count)
            let payloads = Array(repeating: data, count: count)
            let scores = Array(repeating: 80, count: count)
            let times = Array(repeating: Date(), count: count)
            try await client.query(
                """
                INSERT INTO bench_ceiling (event_id, session_id, interaction_type, data, score, occurred_at)
                SELECT * FROM unnest(\(ids)::uuid[], \(sessions)::text[], \(types)::text[], \(payloads)::jsonb[],
                                     \(scores)::int[], \(times)::timestamptz[])
                """,
                logger: logger
            )
        }
        let elapsed = ContinuousClock.now - started
        try await client.query("DROP TABLE bench_ceiling", logger: logger)
        return Double(rows) / elapsed.seconds
    }
}
