import ArgumentParser
import LeadService
import LeadStore
import Logging
import PostgresNIO

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending SQL migrations (DATABASE_URL).")

    func run() async throws {
        let configuration = try ServiceConfiguration()
        let logger = Logger(label: "leadctl")
        try await withDatabase(configuration, logger: logger) { database in
            try await database.checkReachable(within: .seconds(10), logger: logger)
            let applied = try await Migrator(client: database.client, logger: logger).migrate()
            print(applied.isEmpty ? "database is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
        }
    }
}

/// Runs `body` with a started `PostgresClient`, shutting it down afterwards.
func withDatabase<T: Sendable>(
    _ configuration: ServiceConfiguration,
    logger: Logger,
    _ body: @Sendable (Database) async throws -> T
) async throws -> T {
    let database = Database(configuration: configuration.database, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await database.client.run() }
        defer { group.cancelAll() }
        return try await body(database)
    }
}
