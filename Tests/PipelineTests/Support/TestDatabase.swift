import Foundation
import LeadStore
import Logging
import PostgresNIO

/// A connection pool to the test database for assertions, started once per test run.
enum TestDatabase {
    static let client: PostgresClient = {
        let configuration = try! DatabaseConfiguration(url: TestEnvironment.databaseURL)
        let client = PostgresClient(configuration: configuration.clientConfiguration, backgroundLogger: Logger(label: "test-db"))
        Task.detached { await client.run() }
        return client
    }()

    static let logger = Logger(label: "test")

    /// The first column of the first row, as `T`. Reads every row: a result left half-read is one more
    /// thing to doubt when an assertion fails.
    static func scalar<T: PostgresDecodable & Sendable>(_ query: PostgresQuery, as type: T.Type = T.self) async throws -> T? {
        var first: T?
        for try await value in try await client.query(query, logger: logger).decode(T.self) where first == nil {
            first = value
        }
        return first
    }

    static func count(_ query: PostgresQuery) async throws -> Int {
        try await scalar(query, as: Int.self) ?? 0
    }
}
