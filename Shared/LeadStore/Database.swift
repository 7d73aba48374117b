import Logging
import PostgresNIO

/// The process's one `PostgresClient` plus the checks every service runs at start.
package struct Database: Sendable {
    package let client: PostgresClient
    package let configuration: DatabaseConfiguration

    package init(configuration: DatabaseConfiguration, logger: Logger) {
        self.configuration = configuration
        var logger = logger
        logger.logLevel = max(logger.logLevel, .notice)
        self.client = PostgresClient(configuration: configuration.clientConfiguration, backgroundLogger: logger)
    }

    /// `SELECT 1` with a deadline: postgres-nio retries a refused login quietly forever, so a wrong password
    /// or a stopped server would otherwise look like a hang. The query is abandoned at the deadline, not waited
    /// for: one sent to a server that was shutting down can stay unanswered (see `DedicatedConnection`).
    package func checkReachable(within timeout: Duration, logger: Logger) async throws {
        let client = self.client
        let description = configuration.description
        do {
            try await withAbandonableDeadline(timeout) {
                try await client.query("SELECT 1", logger: logger)
            }
        } catch is AbandonedAfterDeadline {
            throw DatabaseError(.unreachable, "no answer from \(description) within \(timeout)")
        } catch {
            throw DatabaseError(.unreachable, "\(description): \(String(reflecting: error))")
        }
    }

    /// Whether a trivial query answers within a second (for `/readyz`).
    package func isReachable(logger: Logger) async -> Bool {
        (try? await checkReachable(within: .seconds(1), logger: logger)) != nil
    }
}

struct DeadlineExceeded: Error {}

/// Runs `body`, throwing `DeadlineExceeded` if it has not finished within `timeout`.
package func withDeadline<T: Sendable>(
    _ timeout: Duration,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw DeadlineExceeded()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
