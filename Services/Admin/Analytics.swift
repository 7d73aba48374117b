import Foundation
import HTTPTypes
import LeadCore
import LeadService
import Logging
import PostgresNIO

/// The plan's analytics, each one SQL query over indexed columns or the hourly rollup.
struct Analytics: Sendable {
    struct Range: Sendable {
        var from: Date
        var to: Date

        /// `from` / `to` from the query string (dates or timestamps); the last 30 days by default.
        init(_ query: [String: String], now: Date = Date()) throws(APIError) {
            var filter = LeadFilter()
            var scoped: [String: String] = [:]
            scoped["from"] = query["from"]
            scoped["to"] = query["to"]
            filter = try LeadFilter(scoped)
            to = filter.to ?? now
            from = filter.from ?? to.addingTimeInterval(-30 * 86_400)
            guard from < to else {
                throw APIError(.unprocessableContent, code: "invalid_parameter", "from must be before to", field: "from")
            }
        }

        /// The range cut at whole units of `unit` seconds since the epoch (UTC hours, UTC days): `[lower, upper)`
        /// is whole units (empty when none fits), `[from, lower)` and `[upper, to)` are the partial ends.
        struct Split: Sendable {
            var lower: Date
            var upper: Date
        }

        func split(unit: TimeInterval) -> Split {
            let start = from.timeIntervalSince1970, end = to.timeIntervalSince1970
            let lower = min((start / unit).rounded(.up) * unit, end)
            let upper = max((end / unit).rounded(.down) * unit, lower)
            return Split(lower: Date(timeIntervalSince1970: lower), upper: Date(timeIntervalSince1970: upper))
        }
    }

    let client: PostgresClient
    /// Spend per lead source for ROI (`SOURCE_COSTS`, e.g. `Face Analysis=12000,AI Recommendation=5000`).
    let sourceCosts: [String: Double]

    static let stages = ["contacted", "booked", "converted"]

    // MARK: - Funnel

    /// Counts each stage once, in the period it was reached: interactions by when they happened, sessions by
    /// when they started, prompted sessions by their first prompt, leads by creation and their current status.
    /// Whole hours and UTC days come from the rollups; the partial ones at the range's ends from the tables.
    func funnel(_ range: Range, period: String, logger: Logger) async throws -> JSONValue {
        let hours = range.split(unit: 3600)
        let days = range.split(unit: 86_400)
        let (from, to) = (range.from, range.to)
        async let counts = client.query(
            """
            SELECT
                (SELECT COALESCE(sum(interactions), 0)::int8 FROM interaction_hourly WHERE hour >= \(hours.lower) AND hour < \(hours.upper))
                + (SELECT count(*) FROM user_interactions
                   WHERE (occurred_at >= \(from) AND occurred_at < \(hours.lower)) OR (occurred_at >= \(hours.upper) AND occurred_at < \(to))),
                (SELECT COALESCE(sum(sessions), 0)::int8 FROM session_daily WHERE day >= utc_day(\(days.lower)) AND day < utc_day(\(days.upper)))
                + (SELECT count(*) FROM conversion_sessions
                   WHERE (created_at >= \(from) AND created_at < \(days.lower)) OR (created_at >= \(days.upper) AND created_at < \(to))),
                (SELECT COALESCE(sum(prompted), 0)::int8 FROM session_daily WHERE day >= utc_day(\(days.lower)) AND day < utc_day(\(days.upper)))
                + (SELECT count(*) FROM (
                       SELECT session_id, min(created_at) AS first FROM conversion_prompts
                       WHERE (created_at >= \(from) AND created_at < \(days.lower)) OR (created_at >= \(days.upper) AND created_at < \(to))
                       GROUP BY session_id
                   ) edge
                   WHERE NOT EXISTS (SELECT 1 FROM conversion_prompts p WHERE p.session_id = edge.session_id AND p.created_at < edge.first))
            """,
            logger: logger
        )
        let unit = ["day", "week", "month"].contains(period) ? period : "day"
        async let sourceRows = stageRows(key: "source", as: String.self, order: "2 DESC", days: days, range: range, logger: logger)
        async let periodRows = stageRows(
            key: "date_trunc('\(unit)', day::timestamp) AT TIME ZONE 'UTC'", as: Date.self, order: "1", days: days,
            range: range, logger: logger
        )
        var bySource: [JSONValue] = []
        var totals = [0, 0, 0, 0, 0]
        for (source, counts) in try await sourceRows {
            bySource.append(.object([
                "source": .string(source), "leads": .int(Int64(counts[0])), "contacted": .int(Int64(counts[1])),
                "booked": .int(Int64(counts[2])), "converted": .int(Int64(counts[3])), "lost": .int(Int64(counts[4])),
            ]))
            for (index, value) in counts.enumerated() { totals[index] += value }
        }
        var byPeriod: [JSONValue] = []
        for (start, counts) in try await periodRows {
            byPeriod.append(.object([
                "period_start": .string(JSONCoding.formatTimestamp(start)), "leads": .int(Int64(counts[0])),
                "contacted": .int(Int64(counts[1])), "booked": .int(Int64(counts[2])), "converted": .int(Int64(counts[3])),
                "lost": .int(Int64(counts[4])),
            ]))
        }
        var (interactions, sessions, prompted) = (0, 0, 0)
        for try await row in try await counts.decode((Int, Int, Int).self) { (interactions, sessions, prompted) = row }
        let stages: [(String, Int)] = [
            ("interactions", interactions), ("sessions", sessions), ("prompted", prompted),
            ("leads", totals[0]), ("contacted", totals[1]), ("booked", totals[2]), ("converted", totals[3]),
        ]
        return .object([
            "from": .string(JSONCoding.formatTimestamp(range.from)), "to": .string(JSONCoding.formatTimestamp(range.to)),
            "stages": .array(stages.map { .object(["stage": .string($0.0), "count": .int(Int64($0.1))]) }),
            "by_source": .array(bySource), "period": .string(unit), "timezone": "UTC", "by_period": .array(byPeriod),
        ])
    }

    // MARK: - Heatmap

    func heatmap(_ range: Range, logger: Logger) async throws -> JSONValue {
        var cells: [JSONValue] = []
        for try await (type, weekday, hour, count) in try await client.query(
            """
            SELECT interaction_type, EXTRACT(ISODOW FROM hour)::int, EXTRACT(HOUR FROM hour)::int, sum(interactions)::int8
            FROM interaction_hourly WHERE hour >= date_trunc('hour', \(range.from)) AND hour < \(range.to)
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            """,
            logger: logger
        ).decode((String, Int, Int, Int).self) {
            cells.append(.object(["type": .string(type), "weekday": .int(Int64(weekday)), "hour": .int(Int64(hour)), "interactions": .int(Int64(count))]))
        }
        return .object([
            "from": .string(JSONCoding.formatTimestamp(range.from)), "to": .string(JSONCoding.formatTimestamp(range.to)),
            "timezone": "UTC", "weekday_numbering": "ISO (1 = Monday)", "cells": .array(cells),
        ])
    }

    // MARK: - Conversion flow

    func flow(_ range: Range, logger: Logger) async throws -> JSONValue {
        var links: [JSONValue] = []
        for try await (source, firstType, status, count) in try await client.query(
            """
            SELECT COALESCE(source, 'unknown'), COALESCE(first_interaction_type, 'unknown'), status, count(*)::int8
            FROM leads
            WHERE created_at >= \(range.from) AND created_at < \(range.to)
            GROUP BY 1, 2, 3 ORDER BY 4 DESC
            """,
            logger: logger
        ).decode((String, String, String, Int).self) {
            links.append(.object([
                "source": .string(source), "first_interaction_type": .string(firstType), "outcome": .string(status),
                "leads": .int(Int64(count)),
            ]))
        }
        return .object(["from": .string(JSONCoding.formatTimestamp(range.from)), "to": .string(JSONCoding.formatTimestamp(range.to)), "flows": .array(links)])
    }

    // MARK: - Scoring performance

    static let bands: [(String, Int, Int)] = [("0-39", 0, 39), ("40-59", 40, 59), ("60-69", 60, 69), ("70-79", 70, 79), ("80-89", 80, 89), ("90-100", 90, 100)]

    func scoring(_ range: Range, logger: Logger) async throws -> JSONValue {
        var counts: [Int: (Int, Int, Int)] = [:]
        for try await (band, leads, booked, converted) in try await client.query(
            """
            SELECT CASE WHEN lead_score < 40 THEN 0 WHEN lead_score < 60 THEN 1 WHEN lead_score < 70 THEN 2
                        WHEN lead_score < 80 THEN 3 WHEN lead_score < 90 THEN 4 ELSE 5 END,
                   count(*)::int8, (count(*) FILTER (WHERE status IN ('booked', 'converted')))::int8,
                   (count(*) FILTER (WHERE status = 'converted'))::int8
            FROM leads WHERE created_at >= \(range.from) AND created_at < \(range.to) GROUP BY 1
            """,
            logger: logger
        ).decode((Int, Int, Int, Int).self) {
            counts[band] = (leads, booked, converted)
        }
        var rates: [Double] = []
        let bands: [JSONValue] = Self.bands.enumerated().map { index, band in
            let (leads, booked, converted) = counts[index] ?? (0, 0, 0)
            let rate = leads == 0 ? 0 : Double(converted) / Double(leads)
            if leads > 0 { rates.append(rate) }
            let (low, high) = ExperimentReport.wilsonInterval(successes: converted, trials: leads)
            return .object([
                "band": .string(band.0), "leads": .int(Int64(leads)), "booked_or_converted": .int(Int64(booked)),
                "converted": .int(Int64(converted)), "conversion_rate": .double(rate), "ci95_low": .double(low), "ci95_high": .double(high),
            ])
        }
        let monotonic = zip(rates, rates.dropFirst()).allSatisfy { $0 <= $1 }
        return .object([
            "from": .string(JSONCoding.formatTimestamp(range.from)), "to": .string(JSONCoding.formatTimestamp(range.to)),
            "bands": .array(bands), "higher_score_converts_better": .bool(monotonic),
        ])
    }

    // MARK: - ROI

    /// Leads and conversions per source from the funnel's daily counts (status `converted` now).
    func roi(_ range: Range, logger: Logger) async throws -> JSONValue {
        var rows: [JSONValue] = []
        var seen = Set<String>()
        for (source, counts) in try await stageRows(
            key: "source", as: String.self, order: "2 DESC", days: range.split(unit: 86_400), range: range, logger: logger
        ) {
            seen.insert(source)
            rows.append(roiRow(source: source, leads: counts[0], converted: counts[3]))
        }
        for source in sourceCosts.keys.sorted() where !seen.contains(source) {
            rows.append(roiRow(source: source, leads: 0, converted: 0))
        }
        return .object([
            "from": .string(JSONCoding.formatTimestamp(range.from)), "to": .string(JSONCoding.formatTimestamp(range.to)),
            "costs_configured": .bool(!sourceCosts.isEmpty), "sources": .array(rows),
        ])
    }

    private func roiRow(source: String, leads: Int, converted: Int) -> JSONValue {
        let spend = sourceCosts[source]
        return .object([
            "source": .string(source), "leads": .int(Int64(leads)), "conversions": .int(Int64(converted)),
            "conversion_rate": .double(leads == 0 ? 0 : Double(converted) / Double(leads)),
            "spend": spend.map { .double($0) } ?? .null,
            "cost_per_lead": spend.flatMap { leads > 0 ? .double($0 / Double(leads)) : nil } ?? .null,
            "cost_per_conversion": spend.flatMap { converted > 0 ? .double($0 / Double(converted)) : nil } ?? .null,
        ])
    }

    /// Leads in `range` grouped by `key` (SQL text from this file only, never from a request, over the columns
    /// `day`, `source`, `status`), with the funnel's stage counts: leads, contacted, booked, converted, lost.
    /// Whole days come from `lead_daily`, the partial days at the ends from `leads`.
    private func stageRows<Key: PostgresDecodable & Sendable>(
        key: String, as: Key.Type, order: String, days: Range.Split, range: Range, logger: Logger
    ) async throws -> [(Key, [Int])] {
        var rows: [(Key, [Int])] = []
        for try await (key, leads, contacted, booked, converted, lost) in try await client.query(
            """
            WITH counted AS (
                SELECT day, source, status, leads FROM lead_daily
                WHERE day >= utc_day(\(days.lower)) AND day < utc_day(\(days.upper))
                UNION ALL
                SELECT utc_day(created_at), COALESCE(source, 'unknown'), status, 1 FROM leads
                WHERE (created_at >= \(range.from) AND created_at < \(days.lower))
                   OR (created_at >= \(days.upper) AND created_at < \(range.to))
            )
            SELECT \(unescaped: key),
                sum(leads)::int8,
                COALESCE(sum(leads) FILTER (WHERE status IN ('contacted', 'booked', 'converted')), 0)::int8,
                COALESCE(sum(leads) FILTER (WHERE status IN ('booked', 'converted')), 0)::int8,
                COALESCE(sum(leads) FILTER (WHERE status = 'converted'), 0)::int8,
                COALESCE(sum(leads) FILTER (WHERE status = 'lost'), 0)::int8
            FROM counted GROUP BY 1 HAVING sum(leads) <> 0 ORDER BY \(unescaped: order)
            """,
            logger: logger
        ).decode((Key, Int, Int, Int, Int, Int).self) {
            rows.append((key, [leads, contacted, booked, converted, lost]))
        }
        return rows
    }

    /// `Face Analysis=12000,AI Recommendation=5000`.
    static func parseCosts(_ text: String?) throws -> [String: Double] {
        guard let text, !text.isEmpty else { return [:] }
        var costs: [String: Double] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Double(parts[1].trimmed), value >= 0 else {
                throw ConfigurationError("SOURCE_COSTS must look like 'Face Analysis=12000,AI Recommendation=5000'")
            }
            costs[parts[0].trimmed] = value
        }
        return costs
    }
}
