import Foundation
import LeadCore
import Logging
import PostgresNIO

/// Alerts and their webhook deliveries.
package enum AlertStore {
    /// What `record` stored: the alerts not seen before, with their outbox rows and webhook deliveries.
    package struct Recorded: Sendable {
        package var alerts: [Alert] = []
        /// The new alerts' `alert.*` messages, in the order given, leased to the caller (`OutboxStore.lease`).
        package var messages: [OutboxMessage] = []
        /// The new alerts' deliveries, leased to the caller for `deliveryLease`: it attempts them itself.
        package var deliveries: [Delivery] = []
    }

    /// Stores the alerts not seen before (by dedupe key), their `alert.*` messages in the outbox, and one pending
    /// delivery per enabled webhook URL, all leased to the caller, which publishes and delivers them once this
    /// commits (a relay and the deliverer's poll take over what it does not, when the leases end).
    package static func record(
        _ alerts: [Alert],
        webhookURLs: [String],
        deliveryLease: Duration,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Recorded {
        guard !alerts.isEmpty else { return Recorded() }
        let rows: [JSONValue] = alerts.map { alert in
            .object([
                "id": .string(alert.id.uuidString), "kind": .string(alert.kind.rawValue), "dedupe_key": .string(alert.dedupeKey),
                "lead_id": alert.leadID.map { .int($0) } ?? .null, "session_id": JSONValue(alert.sessionID),
                "payload": alert.payload,
            ])
        }
        let deliverySeconds = Double(deliveryLease.components.seconds)
        let result = try await connection.execute(
            RecordAlerts(
                alerts: JSONWriter.string(.array(rows)), leaseSeconds: OutboxStore.leaseSeconds,
                deliverySeconds: deliverySeconds, webhookURLs: webhookURLs
            ),
            logger: logger
        )
        var inserted = Set<UUID>()
        var recorded = Recorded()
        for try await (part, id, uuid, first, second, third, at) in result {
            switch part {
            case "alert":
                inserted.insert(uuid)
            case "message":
                guard let id, let first, let second, let third else { continue }
                recorded.messages.append(OutboxMessage(id: id, messageID: uuid, exchange: first, routingKey: second, body: third))
            default:
                guard let id, let first, let second, let at else { continue }
                recorded.deliveries.append(Delivery(id: id, alertID: uuid, url: first, payload: second, attempts: 0, retrySince: at))
            }
        }
        recorded.alerts = alerts.filter { inserted.contains($0.id) }
        recorded.messages.sort { $0.id < $1.id }
        recorded.deliveries.sort { $0.id < $1.id }
        return recorded
    }

    package struct Delivery: Sendable {
        package var id: Int64
        package var alertID: UUID
        package var url: String
        package var payload: String
        package var attempts: Int
        /// Retries give up `giveUpAfter` after this.
        package var retrySince: Date
    }

    /// Takes up to `limit` due deliveries for `url` (none while it is disabled) and leases them for `lease` (a
    /// crash hands them back then).
    package static func claimDue(url: String, limit: Int, lease: Duration, client: PostgresClient, logger: Logger) async throws -> [Delivery] {
        let seconds = Double(lease.components.seconds)
        let rows = try await client.query(
            """
            UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => \(seconds))
            WHERE d.id IN (
                SELECT id FROM webhook_deliveries
                WHERE url = \(url) AND status = 'pending' AND next_attempt_at <= now()
                  AND NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.url = \(url) AND e.disabled_at IS NOT NULL)
                ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING d.id, d.alert_id, d.url, d.payload::text, d.attempts, d.retry_since
            """,
            logger: logger
        )
        var deliveries: [Delivery] = []
        for try await (id, alertID, url, payload, attempts, createdAt) in rows.decode((Int64, UUID, String, String, Int, Date).self) {
            deliveries.append(Delivery(id: id, alertID: alertID, url: url, payload: payload, attempts: attempts, retrySince: createdAt))
        }
        return deliveries
    }

    package enum AttemptOutcome: Sendable {
        case delivered
        /// Retry at `next`; `giveUp` marks it failed instead.
        case retry(next: Date, giveUp: Bool)
        /// 410 Gone: the endpoint asked to be forgotten.
        case gone
    }

    /// One finished attempt, to be recorded.
    package struct Attempt: Sendable {
        package var delivery: Delivery
        package var statusCode: Int?
        package var latency: Duration
        package var error: String?
        package var outcome: AttemptOutcome

        package init(delivery: Delivery, statusCode: Int?, latency: Duration, error: String?, outcome: AttemptOutcome) {
            self.delivery = delivery
            self.statusCode = statusCode
            self.latency = latency
            self.error = error
            self.outcome = outcome
        }
    }

    /// Records finished attempts and what follows from each, in one transaction: every attempt row and every
    /// delivered delivery in one statement each (the common case), retries and 410s one by one.
    package static func recordAttempts(_ attempts: [Attempt], client: PostgresClient, logger: Logger) async throws {
        guard !attempts.isEmpty else { return }
        let rows: [JSONValue] = attempts.map { attempt in
            let milliseconds = Double(attempt.latency.components.seconds) * 1000 + Double(attempt.latency.components.attoseconds) / 1e15
            return .object([
                "delivery_id": .int(attempt.delivery.id), "status_code": attempt.statusCode.map { .int(Int64($0)) } ?? .null,
                "latency_ms": .double(milliseconds), "error": attempt.error.map { .string($0) } ?? .null,
            ])
        }
        let delivered: [Int64] = attempts.compactMap { attempt in
            if case .delivered = attempt.outcome { attempt.delivery.id } else { nil }
        }
        // Only 2xx answers are delivered, so last_status is the attempt's own.
        let codes: [Int] = attempts.compactMap { attempt in
            if case .delivered = attempt.outcome { attempt.statusCode ?? 200 } else { nil }
        }
        if delivered.count == attempts.count {
            // The common case, in one statement (so one round trip, atomic on its own).
            for try await _ in try await client.execute(
                RecordDeliveredAttempts(attempts: JSONWriter.string(.array(rows)), delivered: delivered, codes: codes), logger: logger
            ) {}
            return
        }
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO webhook_attempts (delivery_id, status_code, latency_ms, error)
                SELECT delivery_id, status_code, latency_ms, error
                FROM jsonb_to_recordset(\(JSONWriter.string(.array(rows)))::jsonb)
                     AS x(delivery_id BIGINT, status_code INTEGER, latency_ms DOUBLE PRECISION, error TEXT)
                """,
                logger: logger
            )
            if !delivered.isEmpty {
                try await connection.query(
                    """
                    UPDATE webhook_deliveries d SET status = 'delivered', attempts = d.attempts + 1, last_status = x.code,
                        last_error = NULL, delivered_at = now()
                    FROM unnest(\(delivered)::bigint[], \(codes)::integer[]) AS x(id, code)
                    WHERE d.id = x.id
                    """,
                    logger: logger
                )
            }
            for attempt in attempts {
                let delivery = attempt.delivery
                switch attempt.outcome {
                case .delivered:
                    continue
                case .retry(let next, let giveUp):
                    try await connection.query(
                        """
                        UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = \(attempt.statusCode),
                            last_error = \(attempt.error), next_attempt_at = \(next),
                            status = CASE WHEN \(giveUp) THEN 'failed' ELSE 'pending' END
                        WHERE id = \(delivery.id)
                        """,
                        logger: logger
                    )
                case .gone:
                    try await connection.query(
                        """
                        INSERT INTO webhook_endpoints (url, disabled_at, disabled_reason) VALUES (\(delivery.url), now(), '410 Gone')
                        ON CONFLICT (url) DO UPDATE SET disabled_at = now(), disabled_reason = '410 Gone'
                        """,
                        logger: logger
                    )
                    try await connection.query(
                        """
                        UPDATE webhook_deliveries SET status = 'disabled', attempts = attempts + CASE WHEN id = \(delivery.id) THEN 1 ELSE 0 END,
                            last_status = CASE WHEN id = \(delivery.id) THEN 410 ELSE last_status END
                        WHERE url = \(delivery.url) AND status = 'pending'
                        """,
                        logger: logger
                    )
                }
            }
        }
    }

    package static func isDisabled(url: String, client: PostgresClient, logger: Logger) async throws -> Bool {
        let rows = try await client.query(
            "SELECT 1 FROM webhook_endpoints WHERE url = \(url) AND disabled_at IS NOT NULL",
            logger: logger
        )
        for try await _ in rows.decode(Int.self) { return true }
        return false
    }

    package struct DeliveryRow: Sendable {
        package var id: Int64
        package var status: String
        package var attempts: Int
        package var url: String
        package var lastStatus: Int?
        package var lastError: String?
        package var nextAttemptAt: Date
        package var createdAt: Date
        package var kind: String
    }

    package static func list(status: String?, limit: Int, client: PostgresClient, logger: Logger) async throws -> [DeliveryRow] {
        let rows = try await client.query(
            """
            SELECT d.id, d.status, d.attempts, d.url, d.last_status, d.last_error, d.next_attempt_at, d.created_at, a.kind
            FROM webhook_deliveries d JOIN alerts a ON a.id = d.alert_id
            WHERE \(status) IS NULL OR d.status = \(status)
            ORDER BY d.id DESC LIMIT \(limit)
            """,
            logger: logger
        )
        var result: [DeliveryRow] = []
        for try await (id, status, attempts, url, lastStatus, lastError, next, created, kind) in rows.decode(
            (Int64, String, Int, String, Int?, String?, Date, Date, String).self
        ) {
            result.append(.init(id: id, status: status, attempts: attempts, url: url, lastStatus: lastStatus, lastError: lastError, nextAttemptAt: next, createdAt: created, kind: kind))
        }
        return result
    }

    /// Puts failed deliveries (one, or all) back to pending with a fresh retry window; returns how many.
    package static func resend(id: Int64?, client: PostgresClient, logger: Logger) async throws -> Int {
        let rows = try await client.query(
            """
            WITH resent AS (
                UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), retry_since = now()
                WHERE status = 'failed' AND (\(id)::bigint IS NULL OR id = \(id))
                RETURNING 1)
            SELECT count(*) FROM resent
            """,
            logger: logger
        )
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }
}

/// `AlertStore.record` in one statement (one round trip): the alerts, then for the ones not seen before their
/// outbox messages, in the order given, and their webhook deliveries (none to a disabled endpoint); the rows
/// written come back. Prepared once per connection (see PreparedStatements.swift).
struct RecordAlerts: PostgresPreparedStatement {
    static let sql = """
        WITH given AS (
            SELECT * FROM ROWS FROM (
                jsonb_to_recordset($1::jsonb)
                    AS (id UUID, kind TEXT, dedupe_key TEXT, lead_id BIGINT, session_id TEXT, payload JSONB)
            ) WITH ORDINALITY AS x(id, kind, dedupe_key, lead_id, session_id, payload, position)
        ), fresh AS (
            INSERT INTO alerts (id, kind, dedupe_key, lead_id, session_id, payload)
            SELECT id, kind, dedupe_key, lead_id, session_id, payload FROM given ORDER BY position
            ON CONFLICT (dedupe_key) DO NOTHING
            RETURNING id, kind, payload
        ), queued AS (
            INSERT INTO outbox (exchange, routing_key, body, leased_until)
            SELECT 'leads.events', 'alert.' || f.kind, f.payload, now() + make_interval(secs => $2::float8)
            FROM fresh f JOIN given g ON g.id = f.id ORDER BY g.position
            RETURNING id, message_id, exchange, routing_key, body
        ), deliveries AS (
            INSERT INTO webhook_deliveries (alert_id, url, payload, next_attempt_at)
            SELECT f.id, u.url, f.payload, now() + make_interval(secs => $3::float8)
            FROM fresh f CROSS JOIN unnest($4::text[]) AS u(url)
            WHERE NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.url = u.url AND e.disabled_at IS NOT NULL)
            ON CONFLICT (alert_id, url) DO NOTHING
            RETURNING id, alert_id, url, payload, retry_since
        )
        SELECT 'alert', NULL::bigint, id, NULL, NULL, NULL, NULL::timestamptz FROM fresh
        UNION ALL
        SELECT 'message', id, message_id, exchange, routing_key, body::text, NULL FROM queued
        UNION ALL
        SELECT 'delivery', id, alert_id, url, payload::text, NULL, retry_since FROM deliveries
        """
    typealias Row = (String, Int64?, UUID, String?, String?, String?, Date?)

    var alerts: String
    var leaseSeconds: Double
    var deliverySeconds: Double
    var webhookURLs: [String]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(alerts)
        bindings.append(leaseSeconds)
        bindings.append(deliverySeconds)
        bindings.append(webhookURLs)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// The common case of `AlertStore.recordAttempts` (every attempt delivered) in one statement: the attempt rows
/// and the deliveries marked delivered. Prepared once per connection.
struct RecordDeliveredAttempts: PostgresPreparedStatement {
    static let sql = """
        WITH recorded AS (
            INSERT INTO webhook_attempts (delivery_id, status_code, latency_ms, error)
            SELECT delivery_id, status_code, latency_ms, error
            FROM jsonb_to_recordset($1::jsonb)
                 AS x(delivery_id BIGINT, status_code INTEGER, latency_ms DOUBLE PRECISION, error TEXT)
        )
        UPDATE webhook_deliveries d SET status = 'delivered', attempts = d.attempts + 1, last_status = x.code,
            last_error = NULL, delivered_at = now()
        FROM unnest($2::bigint[], $3::integer[]) AS x(id, code)
        WHERE d.id = x.id
        """
    typealias Row = ()

    var attempts: String
    var delivered: [Int64]
    var codes: [Int]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(attempts)
        bindings.append(delivered)
        bindings.append(codes.map { Int32($0) })
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {}
}
