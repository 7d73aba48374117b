import Foundation
import PostgresNIO

/// Where PostgreSQL is, parsed from `DATABASE_URL` (`postgres://user:password@host:port/database`).
package struct DatabaseConfiguration: Sendable, CustomStringConvertible {
    package var host: String
    package var port: Int
    package var user: String
    package var password: String?
    package var database: String
    package var maximumConnections = 8

    package init(url: String) throws(DatabaseError) {
        guard let components = URLComponents(string: url),
            components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, !host.isEmpty
        else {
            throw DatabaseError(.invalidConfiguration, "DATABASE_URL must look like postgres://user:password@host:5432/db")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.user = components.user ?? "postgres"
        self.password = components.password?.removingPercentEncoding ?? components.password
        var path = components.path
        if path.hasPrefix("/") { path.removeFirst() }
        self.database = path.isEmpty ? self.user : path
    }

    /// The URL without its password, safe for logs.
    package var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    package var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host,
            port: port,
            username: user,
            password: password,
            database: database,
            tls: .disable
        )
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(3)
        return configuration
    }
}

/// A database failure an operator can act on.
package struct DatabaseError: Error, CustomStringConvertible {
    package enum Code: String, Sendable {
        case invalidConfiguration
        case unreachable
        case migrationFailed
    }

    package var code: Code
    package var message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { "database \(code.rawValue): \(message)" }
}
