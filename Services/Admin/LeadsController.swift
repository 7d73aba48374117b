import Foundation
import Hummingbird
import LeadCore
import LeadService
import Logging
import NIOCore
import PostgresNIO

/// The lead API: list (filters, keyset pagination), one lead with its history, CSV export, outcomes.
struct LeadsController: Sendable {
    let client: PostgresClient
    let outcomes: OutcomeRecorder
    /// Days for a lead's heat to halve without interactions (`HEAT_HALF_LIFE_DAYS`).
    let heatHalfLifeDays: Double

    func addRoutes(to group: RouterGroup<BasicRequestContext>) {
        group.get("leads", use: list)
        group.get("leads.csv", use: csv)
        group.get("leads/{id}", use: detail)
        group.post("leads/{id}/outcome", use: recordOutcome)
    }

    static let columns = """
        l.id, l.patient_name, l.mobile_number, l.email, l.procedure_name, l.source, l.message, l.lead_score,
        l.engagement_level, l.status, l.session_id, l.conversion_probability, l.created_at, l.updated_at,
        COALESCE(l.last_interaction_at, l.created_at)
        """

    struct LeadRow: Sendable {
        var id: Int64
        var name: String?
        var phone: String?
        var email: String?
        var procedure: String?
        var source: String?
        var message: String?
        var score: Int
        var engagement: String
        var status: String
        var sessionID: String?
        var probability: Double?
        var createdAt: Date
        var updatedAt: Date
        var lastInteractionAt: Date
        var heat: Double

        typealias Columns = (Int64, String?, String?, String?, String?, String?, String?, Int, String, String, String?, Double?, Date, Date, Date, Double)

        init(_ c: Columns) {
            (id, name, phone, email, procedure, source, message, score, engagement, status, sessionID, probability, createdAt, updatedAt, lastInteractionAt, heat) = c
        }

        var json: JSONValue {
            .object([
                "id": .int(id), "patient_name": JSONValue(name), "mobile_number": JSONValue(phone), "email": JSONValue(email),
                "procedure_name": JSONValue(procedure), "source": JSONValue(source), "message": JSONValue(message),
                "lead_score": .int(Int64(score)), "engagement_level": .string(engagement), "status": .string(status),
                "session_id": JSONValue(sessionID), "conversion_probability": probability.map { .double($0) } ?? .null,
                "created_at": .string(JSONCoding.formatTimestamp(createdAt)), "updated_at": .string(JSONCoding.formatTimestamp(updatedAt)),
                "last_interaction_at": .string(JSONCoding.formatTimestamp(lastInteractionAt)),
                "heat": .double((heat * 10).rounded() / 10),
            ])
        }
    }

    func query(_ filter: LeadFilter, limit: Int?) throws -> PostgresQuery {
        var builder = SQLBuilder()
        builder.append("SELECT \(Self.columns), ")
        // score × 0.5^(age / half-life), as exp() of float8: EXTRACT returns numeric, and numeric arithmetic on
        // every lead was half of a heat-sorted page's time (100,000 leads: 112 ms against 56 ms for the sum).
        builder.append("l.lead_score * exp(-ln(2::float8) * date_part('epoch', now() - COALESCE(l.last_interaction_at, l.created_at)) / (86400 * ")
        try builder.bind(heatHalfLifeDays)
        builder.append("::float8)) AS heat FROM leads l")
        try filter.appendWhere(to: &builder, paginate: !filter.sortByHeat)
        builder.append(filter.sortByHeat ? " ORDER BY heat DESC, l.id DESC" : " ORDER BY l.id DESC")
        if let limit {
            builder.append(" LIMIT ")
            try builder.bind(limit)
        }
        return builder.query
    }

    func leads(_ filter: LeadFilter, logger: Logger) async throws -> [LeadRow] {
        var rows: [LeadRow] = []
        for try await columns in try await client.query(try query(filter, limit: filter.limit), logger: logger).decode(LeadRow.Columns.self) {
            rows.append(LeadRow(columns))
        }
        return rows
    }

    @Sendable func list(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let filter = try LeadFilter(request.queryDictionary)
        let rows = try await leads(filter, logger: context.logger)
        var page: [String: JSONValue] = ["leads": .array(rows.map(\.json))]
        if rows.count == filter.limit, let last = rows.last, !filter.sortByHeat {
            page["next"] = .string("/v1/leads?\(filter.queryString)\(filter.queryString.isEmpty ? "" : "&")before=\(last.id)&limit=\(filter.limit)")
        }
        return .json(.object(page))
    }

    /// Streams rows as they come from PostgreSQL: an export of 100,000 leads never sits in memory.
    @Sendable func csv(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try csvResponse(try LeadFilter(request.queryDictionary), logger: context.logger)
    }

    func csvResponse(_ filter: LeadFilter, logger: Logger) throws -> Response {
        var filter = filter
        filter.before = nil
        let query = try self.query(filter, limit: nil)
        let client = self.client
        let body = ResponseBody { writer in
            // The row sequence streams from the server with back-pressure; the connection returns to the pool
            // when it ends.
            let rows = try await client.query(query, logger: logger).decode(LeadRow.Columns.self)
            var buffer = ByteBuffer(string: "id,patient_name,mobile_number,email,procedure_name,source,lead_score,engagement_level,status,created_at\r\n")
            for try await columns in rows {
                let row = LeadRow(columns)
                let fields = [
                    String(row.id), row.name ?? "", row.phone ?? "", row.email ?? "", row.procedure ?? "", row.source ?? "",
                    String(row.score), row.engagement, row.status, JSONCoding.formatTimestamp(row.createdAt),
                ]
                buffer.writeString(fields.map(csvField).joined(separator: ",") + "\r\n")
                if buffer.readableBytes > 64 * 1024 {
                    try await writer.write(buffer)
                    buffer.clear()
                }
            }
            if buffer.readableBytes > 0 { try await writer.write(buffer) }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"leads.csv\""],
            body: body
        )
    }

    @Sendable func detail(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let id = try context.parameters.require("id", as: Int64.self)
        guard let lead = try await detail(id: id, logger: context.logger) else {
            throw APIError(.notFound, code: "not_found", "no lead \(id)")
        }
        return .json(lead)
    }

    /// One lead with its interactions, score history, prompts, alerts and outcomes; nil when there is none.
    func detail(id: Int64, logger: Logger) async throws -> JSONValue? {
        var filter = LeadFilter()
        filter.before = id + 1
        filter.limit = 1
        guard let lead = try await leads(filter, logger: logger).first, lead.id == id else { return nil }
        async let interactions = rows(
            """
            SELECT jsonb_build_object('id', id, 'event_id', event_id, 'session_id', session_id, 'interaction_type', interaction_type,
                'source_page', source_page, 'score', score, 'data', data, 'occurred_at', occurred_at, 'converted_to_lead', converted_to_lead)::text
            FROM user_interactions WHERE lead_id = \(id) ORDER BY occurred_at LIMIT 500
            """,
            logger: logger
        )
        async let ledger = rows(
            """
            SELECT jsonb_build_object('event_id', event_id, 'lead_score', max(lead_score), 'at', min(created_at),
                'breakdown', jsonb_agg(jsonb_build_object('rule', rule, 'points', points) ORDER BY id))::text
            FROM lead_score_ledger WHERE lead_id = \(id) GROUP BY event_id ORDER BY min(id)
            """,
            logger: logger
        )
        async let prompts = rows(
            """
            SELECT jsonb_build_object('prompt_id', p.id, 'session_id', p.session_id, 'variant', p.variant,
                'intent_score', p.intent_score, 'reason', p.reason, 'status', p.status, 'created_at', p.created_at,
                'converted_at', p.converted_at)::text
            FROM conversion_prompts p JOIN session_leads s ON s.session_id = p.session_id
            WHERE s.lead_id = \(id) ORDER BY p.created_at
            """,
            logger: logger
        )
        async let alerts = rows(
            "SELECT jsonb_build_object('alert_id', id, 'kind', kind, 'payload', payload, 'created_at', created_at)::text FROM alerts WHERE lead_id = \(id) ORDER BY created_at",
            logger: logger
        )
        async let outcomes = rows(
            "SELECT jsonb_build_object('status', status, 'occurred_at', occurred_at, 'reported_via', reported_via)::text FROM lead_outcomes WHERE lead_id = \(id) ORDER BY occurred_at",
            logger: logger
        )
        guard case .object(var body) = lead.json else { return nil }
        body["interactions"] = .array(try await interactions)
        body["score_history"] = .array(try await ledger)
        body["prompts"] = .array(try await prompts)
        body["alerts"] = .array(try await alerts)
        body["outcomes"] = .array(try await outcomes)
        return .object(body)
    }

    @Sendable func recordOutcome(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let id = try context.parameters.require("id", as: Int64.self)
        let bytes = try await request.body.collect(upTo: 16 * 1024)
        let body: JSONValue
        do {
            body = try JSONParser.parse(bytes.readableBytesView)
        } catch {
            throw APIError(.badRequest, code: "malformed_json", "the body is not valid JSON: \(error)")
        }
        guard let status = body["status"]?.stringValue, OutcomeRecorder.statuses.contains(status) else {
            throw APIError(.unprocessableContent, code: "invalid_field", "status must be contacted, booked, converted or lost", field: "status")
        }
        var occurredAt = Date()
        if let text = body["occurred_at"]?.stringValue {
            guard let date = JSONCoding.parseTimestamp(text) else {
                throw APIError(.unprocessableContent, code: "invalid_field", "occurred_at must be an RFC 3339 timestamp", field: "occurred_at")
            }
            occurredAt = date
        }
        guard let applied = try await outcomes.record(leadID: id, status: status, occurredAt: occurredAt, via: .api, messageID: nil, logger: context.logger) else {
            throw APIError(.notFound, code: "not_found", "no lead \(id)")
        }
        return .json(.object(["lead_id": .int(id), "status": .string(applied)]))
    }

    private func rows(_ query: PostgresQuery, logger: Logger) async throws -> [JSONValue] {
        var values: [JSONValue] = []
        for try await text in try await client.query(query, logger: logger).decode(String.self) {
            values.append(try JSONParser.parse(text.utf8, maxDepth: 128))
        }
        return values
    }
}

/// RFC 4180 quoting, and a leading `'` for values a spreadsheet would run as a formula (phone numbers such as
/// `+91 98765 43210` are left alone).
func csvField(_ value: String) -> String {
    var value = value
    let looksLikePhone = value.first == "+" && value.dropFirst().allSatisfy { $0.isNumber || " -().".contains($0) }
    if let first = value.first, "=+-@\t\r".contains(first), !looksLikePhone { value = "'" + value }
    guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
    return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
