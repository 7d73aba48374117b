import Logging
import PostgresNIO
import Synchronization

/// One PostgreSQL connection owned by one sequential worker (a consumer loop, the outbox relay), opened on
/// first use and reopened after it breaks.
///
/// Workers use this instead of the pool: a lease requested while the database was down could stay queued in
/// the pool after the database came back (seen with postgres-nio 1.33 in our outage test), and a worker that
/// runs one transaction at a time gains nothing from pooling anyway.
package actor DedicatedConnection {
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private var connection: PostgresConnection?
    private var nextID = 0
    private let timeout: Duration

    /// `timeout`: the longest a transaction may take before the connection is considered dead.
    package init(configuration: DatabaseConfiguration, timeout: Duration = .seconds(30), logger: Logger) {
        self.timeout = timeout
        var connectionConfiguration = PostgresConnection.Configuration(
            host: configuration.host,
            port: configuration.port,
            username: configuration.user,
            password: configuration.password,
            database: configuration.database,
            tls: .disable
        )
        connectionConfiguration.options.connectTimeout = .seconds(3)
        self.configuration = connectionConfiguration
        var logger = logger
        logger.logLevel = max(logger.logLevel, .notice)
        self.logger = logger
    }

    /// Runs `body` in a transaction on the connection (rolled back when it throws). A connection that
    /// failed is closed and replaced on the next call.
    ///
    /// A query sent while the server shuts down can wait forever for an answer (seen with postgres-nio 1.33,
    /// and closing the connection does not wake it). Past `timeout` the transaction is abandoned: the caller
    /// gets an error and retries on a new connection; the stuck task is left to the old one.
    package func withTransaction<T: Sendable>(
        logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await run { connection in
            try await connection.withTransaction(logger: logger) { try await body($0) }
        }
    }

    /// Runs `body` on the connection outside a transaction: for one statement, atomic on its own, without the
    /// two round trips of `BEGIN` and `COMMIT`. Otherwise as `withTransaction`.
    package func withConnection<T: Sendable>(
        logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await run(body)
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await open()
        do {
            return try await withAbandonableDeadline(timeout) { try await body(connection) }
        } catch {
            if error is AbandonedAfterDeadline {
                self.logger.warning("no answer from the database; abandoning the connection", metadata: ["timeout": "\(timeout)"])
                self.connection = nil
                Task { try? await connection.close() }
            } else if connection.isClosed || ErrorKind.isConnectionLevel(error) {
                self.connection = nil
                try? await connection.close()
            }
            throw error
        }
    }

    package func close() async {
        if let connection {
            self.connection = nil
            try? await connection.close()
        }
    }

    private func open() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        nextID += 1
        let connection = try await PostgresConnection.connect(configuration: configuration, id: nextID, logger: logger)
        self.connection = connection
        return connection
    }
}

/// Tells failures of the connection itself from failures of a statement.
package enum ErrorKind {
    package static func isConnectionLevel(_ error: any Error) -> Bool {
        if let transaction = error as? PostgresTransactionError {
            if let inner = transaction.closureError ?? transaction.commitError ?? transaction.beginError {
                return isConnectionLevel(inner)
            }
            return true
        }
        guard let psql = error as? PSQLError else { return false }
        guard let state = psql.serverInfo?[.sqlState] else { return true }
        return state.hasPrefix("08") || state.hasPrefix("57")
    }
}

/// The operation did not finish in time and was left running.
package struct AbandonedAfterDeadline: Error, CustomStringConvertible {
    package var description: String { "no answer within the deadline" }
}

/// Runs `body` in its own task and returns its result, or throws `AbandonedAfterDeadline` once `timeout` has
/// passed, without waiting for `body` (which is cancelled and left to finish on its own).
package func withAbandonableDeadline<T: Sendable>(
    _ timeout: Duration,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let settled = OnceFlag()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let work = Task {
            let result = await Result(catching: { try await body() })
            if settled.claim() { continuation.resume(with: result) }
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if settled.claim() {
                work.cancel()
                continuation.resume(throwing: AbandonedAfterDeadline())
            }
        }
        // The timer goes as soon as the work is done, rather than sleeping out its full timeout.
        Task {
            _ = await work.result
            timer.cancel()
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}

/// True for the first caller of `claim()` only.
final class OnceFlag: Sendable {
    private let done = Mutex(false)

    func claim() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}
