import AMQP
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging
import PostgresNIO

/// Events per second from a pre-filled `scorer.interactions` to committed rows.
struct ScorerBench {
    let database: PostgresClient
    let broker: BrokerTools
    let logger: Logger

    /// Publishes `events` interactions (30 % with contact, people returning across sessions) to `leads.interactions`;
    /// returns the highest interaction id stored before.
    func fill(events count: Int, tag: String) async throws -> Int {
        let baseline = try await highestID()
        var random = SystemRandomNumberGenerator()
        let publisher = broker.publisher
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                if index >= 2000 { try await group.next() }
                let event = Self.event(tag: tag, persons: count / 4, using: &random)
                let message = OutgoingMessage(
                    exchange: LeadTopology.interactionsExchange, routingKey: event.routingKey,
                    body: event.encoded(), messageID: event.eventID.lowercasedString
                )
                group.addTask { try await publisher.publish(message) }
            }
            try await group.waitForAll()
        }
        return baseline
    }

    /// One event of the benchmark's stream: one of `persons` people under `tag`, in one of their three sessions,
    /// 30 % with contact (a type that makes a lead), the rest anonymous browsing.
    static func event(tag: String, persons: Int, using random: inout some RandomNumberGenerator) -> InteractionEvent {
        let qualifying: [InteractionType] = [.aiRecommendation, .faceAnalysis, .appointmentBooking, .packageInquiry, .consultation]
        let anonymous: [InteractionType] = [.pageView, .search, .pageView, .communityEngagement, .costCalculator]
        let person = Int.random(in: 0..<persons, using: &random)
        let withContact = Double.random(in: 0..<1, using: &random) < 0.3
        return InteractionEvent(
            sessionID: "\(tag)-\(person)-\(Int.random(in: 0..<3, using: &random))",
            type: (withContact ? qualifying : anonymous).randomElement(using: &random)!,
            sourcePage: "/bench",
            contact: withContact ? .init(name: "Person \(person)", email: "p\(person)@\(tag).example.com") : nil,
            data: ["procedure": .string("Botox"), "budget_range": .string(Bool.random(using: &random) ? "high" : "low")]
        )
    }

    /// What the active model adds to the batch function's database time, A/B on identical batches against the
    /// same database: each of `rounds` batches of `size` new events about the `persons` people of an earlier fill
    /// under `tag` (so most join leads they already have) runs once with model `modelID` active and once without
    /// any (set inside that transaction), in alternating order, each in a transaction rolled back, on one
    /// connection to an otherwise idle database. Returns the seconds each way and the events that joined a lead
    /// (counted in the runs with the model).
    func modelAB(modelID: Int, tag: String, persons: Int, rounds: Int, size: Int) async throws -> (with: Double, without: Double, leadEvents: Int) {
        var random = SystemRandomNumberGenerator()
        let scorer = InteractionScorer()
        let logger = logger
        var with = 0.0, without = 0.0, leadEvents = 0
        let batches = (0..<(rounds + 2)).map { _ in
            let events = (0..<size).map { _ in Self.event(tag: tag, persons: persons, using: &random) }
            let json = InteractionStore.batchJSON(events.map {
                InteractionStore.ScoredInteraction(event: $0, score: scorer.score($0), lead: LeadRules.candidate(for: $0))
            })
            return (json, events.map(\.eventID))
        }
        try await database.withConnection { connection in
            for (index, (batch, ids)) in batches.enumerated() {
                for modelOn in (index % 2 == 0 ? [true, false] : [false, true]) {
                    try await connection.query("BEGIN", logger: logger)
                    try await connection.query("UPDATE prediction_models SET active = false WHERE active", logger: logger)
                    if modelOn {
                        try await connection.query("UPDATE prediction_models SET active = true WHERE id = \(modelID)", logger: logger)
                    }
                    let started = ContinuousClock.now
                    try await connection.query("SELECT * FROM lead_process_events(\(batch)::jsonb)", logger: logger)
                    let elapsed = (ContinuousClock.now - started).seconds
                    var joined = 0
                    for try await count in try await connection.query(
                        "SELECT count(*)::int8 FROM user_interactions WHERE event_id = ANY(\(ids)) AND lead_id IS NOT NULL", logger: logger
                    ).decode(Int.self) {
                        joined = count
                    }
                    try await connection.query("ROLLBACK", logger: logger)
                    // The first two batches plan the function's statements on this connection: not counted.
                    guard index >= 2 else { continue }
                    if modelOn {
                        with += elapsed
                        leadEvents += joined
                    } else {
                        without += elapsed
                    }
                }
            }
        }
        return (with, without, leadEvents)
    }

    /// Polls the rows committed since `baseline` (an id) from the scorers' start until all `events` are in; the
    /// rate counts from the first committed row to the last, so process start-up is not in it. Every 200 ms it
    /// reads the highest id (one index probe), and counts the new rows only when that says they may all be in
    /// (ids have gaps, never extra rows): counting up to 50,000 rows on every poll took 7 % of the database's
    /// time from the scorers it measured.
    func measure(events: Int, baseline: Int, since started: ContinuousClock.Instant) async throws -> Double {
        var firstRow: (ContinuousClock.Instant, Int)?
        let deadline = started.advanced(by: .seconds(600))
        while ContinuousClock.now < deadline {
            let highest = try await highestID()
            if firstRow == nil, highest > baseline {
                firstRow = (ContinuousClock.now, try await storedCount(after: baseline))
            }
            if highest - baseline >= events, let (time, count) = firstRow,
                try await storedCount(after: baseline) >= events
            {
                let elapsed = (ContinuousClock.now - time).seconds
                return Double(events - count) / max(elapsed, 0.001)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw BenchError("scorers did not commit \(events) events within 600 s")
    }

    /// Brings the planner's statistics up to date before a measured run. The scorer's batch functions plan their
    /// statements once per connection; on this young database, autovacuum's last statistics are from a table a
    /// fraction of the size, and plans made from them scanned whole tables (a hash join over every interaction to
    /// stitch a few sessions). A production database's statistics follow its tables; this makes the benchmark's
    /// the same.
    ///
    /// Only the tables the scorer fills: a database-wide `ANALYZE` here also recorded the alert, webhook and
    /// conversion tables as empty (lead-alerts and lead-conversion do not run in the scorer phases), and every
    /// plan made from that in the end-to-end run that follows scanned those tables whole as they grew. The
    /// foreign-key checks on `alerts` and `webhook_deliveries` took 600-650 µs each there against 13-15 µs in an
    /// `--e2e-only` run (pg_stat_statements), until autoanalyze caught up a minute later.
    func analyze() async throws {
        try await database.query(PostgresQuery(unsafeSQL: "ANALYZE \(Self.scorerTables)"), logger: logger)
    }

    /// The tables the scorer fills (only these are analyzed or vacuumed by the benchmark).
    private static let scorerTables = "user_interactions, leads, session_leads, lead_score_ledger, interaction_hourly, lead_daily"

    /// Vacuums the tables the scorer phases filled, so that autovacuum has none of their backlog left for the
    /// end-to-end run that follows. Those phases write ~190,000 interactions, ~120,000 ledger rows and ~35,000
    /// leads in about two minutes; autovacuum's passes over them started during the end-to-end run in some full
    /// benches (user_interactions, lead_score_ledger, leads and session_leads there, 15-25 passes counted), and
    /// their CPU went into its latencies. A deployment at 200 leads a second has no such backlog.
    func vacuum() async throws {
        try await database.query(PostgresQuery(unsafeSQL: "VACUUM (ANALYZE) \(Self.scorerTables)"), logger: logger)
    }

    /// Calls and time of the scorer's plpgsql functions so far (`track_functions = pl`, set by scripts/bench.sh).
    struct FunctionTimes {
        var values: [String: (calls: Int, milliseconds: Double)] = [:]

        subscript(name: String) -> (calls: Int, milliseconds: Double)? { values[name] }

        func since(_ earlier: FunctionTimes) -> FunctionTimes {
            var difference = FunctionTimes()
            for (name, now) in values {
                let before = earlier.values[name] ?? (0, 0)
                difference.values[name] = (now.calls - before.calls, now.milliseconds - before.milliseconds)
            }
            return difference
        }
    }

    /// The times once the backends that ran batches since `earlier` and exited have flushed their statistics
    /// (a backend flushes at most once a second while it runs, and on exit): the batch function's calls have
    /// moved and then held still for half a second, or 5 s have passed.
    func functionTimes(after earlier: FunctionTimes) async throws -> FunctionTimes {
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        var times = try await functionTimes()
        var stillSince = ContinuousClock.now
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            let next = try await functionTimes()
            if next["lead_process_events"]?.calls != times["lead_process_events"]?.calls {
                stillSince = ContinuousClock.now
            } else if next["lead_process_events"]?.calls != earlier["lead_process_events"]?.calls,
                      stillSince.duration(to: .now) >= .milliseconds(500) {
                return next
            }
            times = next
        }
        return times
    }

    func functionTimes() async throws -> FunctionTimes {
        var times = FunctionTimes()
        let rows = try await database.query(
            "SELECT funcname::text, calls, total_time FROM pg_stat_user_functions WHERE funcname IN ('lead_process_events', 'lead_predict_batch')",
            logger: logger
        )
        for try await (name, calls, milliseconds) in rows.decode((String, Int, Double).self) {
            times.values[name] = (calls, milliseconds)
        }
        return times
    }

    private func highestID() async throws -> Int {
        try await integer("SELECT COALESCE(max(id), 0) FROM user_interactions")
    }

    /// How many of the interactions stored after `id` joined a lead.
    func leadEvents(after id: Int) async throws -> Int {
        try await integer("SELECT count(*) FROM user_interactions WHERE id > \(id) AND lead_id IS NOT NULL")
    }

    private func storedCount(after id: Int) async throws -> Int {
        try await integer("SELECT count(*) FROM user_interactions WHERE id > \(id)")
    }

    private func integer(_ query: PostgresQuery) async throws -> Int {
        for try await value in try await database.query(query, logger: logger).decode(Int.self) {
            return value
        }
        return 0
    }
}
