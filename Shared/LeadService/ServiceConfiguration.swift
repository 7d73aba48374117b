import AMQP
import Foundation
import LeadStore
import Logging

/// Configuration from environment variables, each with a working local default (CONTRACT section 2).
package struct ServiceConfiguration: Sendable {
    package var amqp: AMQPConfiguration
    package var database: DatabaseConfiguration
    package var queueType: Topology.QueueType
    package var logLevel: Logger.Level
    package var ingestHost: String
    package var ingestPort: Int
    package var adminHost: String
    package var adminPort: Int
    /// Keys the web tier may use. Never logged.
    package var ingestAPIKeys: Set<String>
    /// Bearer token for lead-admin. Never logged.
    package var adminToken: String
    package var highScoreThreshold: Int
    package var webhookURLs: [String]
    package var webhookSecret: String?
    package var metricsHost: String
    package var scorerMetricsPort: Int
    package var conversionMetricsPort: Int
    package var alertsMetricsPort: Int
    /// Outbox relay rounds that may await their confirms at once (a database connection each).
    package var outboxRelayRounds: Int

    package init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let env = EnvironmentReader(environment)
        amqp = try AMQPConfiguration(url: env.string("AMQP_URLS") ?? env.string("AMQP_URL", default: "amqp://guest:guest@127.0.0.1:5672/%2F"))
        database = try DatabaseConfiguration(url: env.string("DATABASE_URL", default: "postgres://leads:leads@127.0.0.1:5432/leads"))
        guard let queueType = Topology.QueueType(rawValue: env.string("QUEUE_TYPE", default: "quorum")) else {
            throw ConfigurationError("QUEUE_TYPE must be quorum or classic")
        }
        self.queueType = queueType
        guard let level = Logger.Level(rawValue: env.string("LOG_LEVEL", default: "info").lowercased()) else {
            throw ConfigurationError("LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical")
        }
        logLevel = level
        ingestHost = env.string("INGEST_HOST", default: "127.0.0.1")
        ingestPort = try env.int("INGEST_PORT", default: 8080)
        adminHost = env.string("ADMIN_HOST", default: "127.0.0.1")
        adminPort = try env.int("ADMIN_PORT", default: 8081)
        ingestAPIKeys = Set(env.list("INGEST_API_KEYS", default: ["dev-ingest-key"]))
        adminToken = env.string("ADMIN_TOKEN", default: "dev-admin-token")
        highScoreThreshold = try env.int("HIGH_SCORE_THRESHOLD", default: 80)
        webhookURLs = env.list("ALERT_WEBHOOK_URLS", default: [])
        webhookSecret = env.string("ALERT_WEBHOOK_SECRET")
        metricsHost = env.string("METRICS_HOST", default: "127.0.0.1")
        scorerMetricsPort = try env.int("SCORER_METRICS_PORT", default: 9101)
        conversionMetricsPort = try env.int("CONVERSION_METRICS_PORT", default: 9102)
        alertsMetricsPort = try env.int("ALERTS_METRICS_PORT", default: 9103)
        outboxRelayRounds = try env.int("OUTBOX_RELAY_ROUNDS", default: 3)
        guard outboxRelayRounds >= 1 else { throw ConfigurationError("OUTBOX_RELAY_ROUNDS must be at least 1") }
        guard !ingestAPIKeys.isEmpty else { throw ConfigurationError("INGEST_API_KEYS must name at least one key") }
        guard !adminToken.isEmpty else { throw ConfigurationError("ADMIN_TOKEN must not be empty") }
    }
}

package struct ConfigurationError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Typed reads of environment variables; an empty value counts as unset.
package struct EnvironmentReader: Sendable {
    let values: [String: String]

    package init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    package func string(_ name: String) -> String? {
        guard let value = values[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    package func string(_ name: String, default fallback: String) -> String {
        string(name) ?? fallback
    }

    package func int(_ name: String, default fallback: Int) throws -> Int {
        guard let text = string(name) else { return fallback }
        guard let value = Int(text) else { throw ConfigurationError("\(name) must be an integer, got \(text)") }
        return value
    }

    package func double(_ name: String, default fallback: Double) throws -> Double {
        guard let text = string(name) else { return fallback }
        guard let value = Double(text) else { throw ConfigurationError("\(name) must be a number, got \(text)") }
        return value
    }

    /// `on` or `off`.
    package func onOff(_ name: String, default fallback: Bool) throws -> Bool {
        switch string(name) {
        case nil: return fallback
        case "on": return true
        case "off": return false
        case let other?: throw ConfigurationError("\(name) must be on or off, got \(other)")
        }
    }

    package func list(_ name: String, default fallback: [String]) -> [String] {
        guard let text = string(name) else { return fallback }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
