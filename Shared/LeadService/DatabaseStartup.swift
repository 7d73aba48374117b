import LeadStore
import Logging
import PostgresNIO
import ServiceLifecycle

/// Start-up work on the database: wait until it answers (bounded), apply pending migrations, open the gate.
/// A database that stays unreachable or a failing migration stops the service with one clear log line.
package struct DatabaseStartup: Service, CustomStringConvertible {
    let database: Database
    let gate: StartGate
    let timeout: Duration
    /// Whether a failure stops the service (workers) or is only logged (ingest, which does not need the database).
    let fatal: Bool
    let logger: Logger

    package init(database: Database, gate: StartGate, timeout: Duration = .seconds(30), fatal: Bool = true, logger: Logger) {
        self.database = database
        self.gate = gate
        self.timeout = timeout
        self.fatal = fatal
        self.logger = logger
    }

    package var description: String { "DatabaseStartup(\(database.configuration))" }

    package func run() async throws {
        do {
            try await waitForDatabase()
            let applied = try await Migrator(client: database.client, logger: logger).migrate()
            logger.info("database ready", metadata: ["database": "\(database.configuration)", "migrations.applied": "\(applied)"])
            gate.resolve(true)
        } catch {
            gate.resolve(false)
            guard fatal else {
                logger.error("database start-up failed", metadata: ["error": "\(error)"])
                try? await gracefulShutdown()
                return
            }
            throw error
        }
        try? await gracefulShutdown()
        gate.resolve(false)
    }

    private func waitForDatabase() async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                try await database.checkReachable(within: .seconds(3), logger: logger)
                return
            } catch {
                if lastError == nil {
                    logger.warning("waiting for the database", metadata: ["error": "\(error)"])
                }
                lastError = error
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        throw DatabaseError(
            .unreachable,
            "\(database.configuration) not reachable within \(timeout): \(lastError.map { "\($0)" } ?? "timeout")"
        )
    }
}
