import Foundation
import Logging
import PostgresNIO

/// Applies the numbered SQL files under `Migrations/` once each, in order, recorded in `schema_migrations`.
/// Concurrent callers (several services starting together) serialize on an advisory lock.
package struct Migrator: Sendable {
    package struct Migration: Sendable {
        package var version: Int
        package var name: String
        package var sql: String
    }

    /// The advisory lock key shared by every migrating process.
    static let lockKey: Int64 = 0x4C45_4144_4D49_4752  // "LEADMIGR"

    package static let all: [Migration] = PackageResources.migrations

    let client: PostgresClient
    let logger: Logger

    package init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Applies what is pending; returns the versions applied now.
    @discardableResult
    package func migrate() async throws -> [Int] {
        let logger = self.logger
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                    """,
                    logger: logger
                )
                var applied = Set<Int>()
                for try await version in try await connection.query(
                    "SELECT version FROM schema_migrations", logger: logger
                ).decode(Int.self) {
                    applied.insert(version)
                }
                var appliedNow: [Int] = []
                for migration in Self.all where !applied.contains(migration.version) {
                    logger.info("applying migration", metadata: ["migration": "\(migration.version) \(migration.name)"])
                    for statement in SQLScript.statements(migration.sql) {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                        logger: logger
                    )
                    appliedNow.append(migration.version)
                }
                return appliedNow
            }
        } catch {
            throw DatabaseError(.migrationFailed, String(reflecting: error))
        }
    }
}

extension PackageResources {
    /// The files of `Migrations/`, embedded in the binary. A new migration adds its line here
    /// (SwiftPM names `001_core.sql` `_01_core_sql`); a test checks that none is missing.
    static let migrationFiles: [(String, [UInt8])] = [
        ("001_core.sql", _01_core_sql),
        ("002_scorer_functions.sql", _02_scorer_functions_sql),
        ("003_scorer_set_based_insert.sql", _03_scorer_set_based_insert_sql),
        ("004_conversion.sql", _04_conversion_sql),
        ("005_alerts.sql", _05_alerts_sql),
        ("006_admin.sql", _06_admin_sql),
        ("007_prediction.sql", _07_prediction_sql),
        ("008_prompt_withdrawn.sql", _08_prompt_withdrawn_sql),
        ("009_prediction_fast_features.sql", _09_prediction_fast_features_sql),
        ("010_hourly_rollup_shards.sql", _10_hourly_rollup_shards_sql),
        ("011_lead_first_interaction.sql", _11_lead_first_interaction_sql),
        ("012_scorer_fewer_statements.sql", _12_scorer_fewer_statements_sql),
        ("013_funnel_daily_rollups.sql", _13_funnel_daily_rollups_sql),
        ("014_prediction_per_batch.sql", _14_prediction_per_batch_sql),
        ("015_set_based_lead_creation.sql", _15_set_based_lead_creation_sql),
        ("016_plans_independent_of_table_size.sql", _16_plans_independent_of_table_size_sql),
        ("017_prediction_step_per_lead.sql", _17_prediction_step_per_lead_sql),
        ("018_scorer_try_locks.sql", _18_scorer_try_locks_sql),
        ("019_outbox_leases.sql", _19_outbox_leases_sql),
        ("020_prediction_prompt_lookups.sql", _20_prediction_prompt_lookups_sql),
        ("021_scorer_inlined_messages.sql", _21_scorer_inlined_messages_sql),
        ("022_leads_without_score_index.sql", _22_leads_without_score_index_sql),
        ("023_scorer_direct_outbox.sql", _23_scorer_direct_outbox_sql),
        ("024_scorer_try_locks_per_lead.sql", _24_scorer_try_locks_per_lead_sql),
        ("025_scorer_locks_once_and_persons_stitching.sql", _25_scorer_locks_once_and_persons_stitching_sql),
        ("026_prediction_one_write_a_lead.sql", _26_prediction_one_write_a_lead_sql),
        ("027_lead_last_interaction_is_the_newest.sql", _27_lead_last_interaction_is_the_newest_sql),
        ("028_contact_key_inlined.sql", _28_contact_key_inlined_sql),
        ("029_link_stitches_a_session_once.sql", _29_link_stitches_a_session_once_sql),
    ]

    /// Every embedded `NNN_name.sql`, sorted by number.
    static var migrations: [Migrator.Migration] {
        let files = migrationFiles
        return files.compactMap { file, bytes -> Migrator.Migration? in
            let base = file.hasSuffix(".sql") ? String(file.dropLast(4)) : file
            guard let underscore = base.firstIndex(of: "_"), let version = Int(base[..<underscore]) else { return nil }
            return Migrator.Migration(
                version: version,
                name: String(base[base.index(after: underscore)...]),
                sql: String(decoding: bytes, as: UTF8.self)
            )
        }
        .sorted { $0.version < $1.version }
    }
}
