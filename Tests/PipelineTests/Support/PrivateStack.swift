import AMQP
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging
import PostgresNIO

/// A RabbitMQ node and a PostgreSQL cluster of a suite's own, for tests that kill or stop things.
struct PrivateStack {
    let name: String
    let broker: PrivateBroker
    let pgPort: Int

    var amqpURL: String { broker.url }
    var databaseURL: String { "postgres://leads:leads@127.0.0.1:\(pgPort)/leads" }
    var environment: [String: String] { ["AMQP_URL": amqpURL, "DATABASE_URL": databaseURL] }

    static func start(name: String, amqpPort: Int, pgPort: Int) async throws -> PrivateStack {
        let broker = try await PrivateBroker.start(name: name, port: amqpPort)
        let stack = PrivateStack(name: name, broker: broker, pgPort: pgPort)
        try await stack.startDatabase()
        return stack
    }

    func startDatabase() async throws { try await runScript(["pg-start", "test-brokers/\(name)", "\(pgPort)"]) }
    func stopDatabase() async throws { try await runScript(["pg-stop", "test-brokers/\(name)"]) }

    func stop() async {
        try? await broker.stop()
        try? await stopDatabase()
    }

    /// A client for assertions on this stack's database.
    func makeDatabaseClient() throws -> PostgresClient {
        let configuration = try DatabaseConfiguration(url: databaseURL)
        let client = PostgresClient(configuration: configuration.clientConfiguration, backgroundLogger: Logger(label: "test-db"))
        Task.detached { await client.run() }
        return client
    }

    /// Publishes events straight to `leads.interactions` (as lead-ingest would), pipelined, each confirmed.
    func publish(_ events: [InteractionEvent]) async throws {
        let connection = AMQPConnection(
            configuration: try AMQPConfiguration(url: amqpURL),
            name: "test-publisher",
            topology: LeadTopology.ingest(.quorum),
            logger: Logger(label: "test-publisher")
        )
        guard await connection.waitUntilConnected(timeout: .seconds(10)) else { throw TestFailure("publisher cannot connect") }
        for chunk in stride(from: 0, to: events.count, by: 500) {
            let slice = events[chunk..<min(chunk + 500, events.count)]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for event in slice {
                    group.addTask {
                        try await connection.publish(
                            OutgoingMessage(
                                exchange: LeadTopology.interactionsExchange,
                                routingKey: event.routingKey,
                                body: try event.encoded(),
                                messageID: event.eventID.uuidString.lowercased()
                            )
                        )
                    }
                }
                try await group.waitForAll()
            }
        }
        await connection.close()
    }

    private func runScript(_ arguments: [String]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [TestEnvironment.repositoryRoot + "/scripts/servers.sh"] + arguments
        try process.run()
        guard try await process.exited() == 0 else { throw TestFailure("servers.sh \(arguments.joined(separator: " ")) failed") }
    }
}

extension PostgresClient {
    func count(_ query: PostgresQuery) async throws -> Int {
        var count = 0
        for try await value in try await self.query(query, logger: TestDatabase.logger).decode(Int.self) { count = value }
        return count
    }

    /// Groups where the funnel's daily counts (migration 013) disagree with the rows they count: leads by
    /// (day, source, status), sessions by start day, sessions by the day of their first prompt. One statement,
    /// so one snapshot: every committed writer must have kept the counts, whatever else runs meanwhile.
    func rollupMismatches() async throws -> Int {
        try await count(
            """
            SELECT (
                SELECT count(*) FROM (
                    SELECT utc_day(created_at) AS day, COALESCE(source, 'unknown') AS source, status, count(*) AS n
                    FROM leads GROUP BY 1, 2, 3
                ) counted
                FULL JOIN (
                    SELECT day, source, status, sum(leads) AS n FROM lead_daily GROUP BY 1, 2, 3 HAVING sum(leads) <> 0
                ) rolled USING (day, source, status)
                WHERE counted.n IS DISTINCT FROM rolled.n
            ) + (
                SELECT count(*) FROM (
                    SELECT day, count(*) FILTER (WHERE started) AS sessions, count(*) FILTER (WHERE NOT started) AS prompted
                    FROM (
                        SELECT utc_day(created_at) AS day, true AS started FROM conversion_sessions
                        UNION ALL
                        SELECT utc_day(min(created_at)), false FROM conversion_prompts GROUP BY session_id
                    ) rows GROUP BY day
                ) counted
                FULL JOIN (
                    SELECT day, sum(sessions) AS sessions, sum(prompted) AS prompted FROM session_daily GROUP BY day
                    HAVING sum(sessions) <> 0 OR sum(prompted) <> 0
                ) rolled USING (day)
                WHERE counted.sessions IS DISTINCT FROM rolled.sessions OR counted.prompted IS DISTINCT FROM rolled.prompted
            )
            """
        )
    }
}

/// A synthetic stream of interactions from known people, with the leads it must produce computed here,
/// independently of the scorer: each person has their own sessions; a person gets exactly one lead when
/// at least one of their contact-bearing events is a lead-making CTA.
struct SyntheticStream {
    var events: [InteractionEvent] = []
    var expectedLeadEmails: Set<String> = []
    let tag: String

    init(tag: String, people: Int, events count: Int, contactShare: Double = 0.3, seed: UInt64 = 42) {
        self.tag = tag
        var random = SeededGenerator(seed: seed)
        // Phones unique to this stream, so leads left by an earlier run never match.
        var system = SystemRandomNumberGenerator()
        let area = Int.random(in: 200...999, using: &system)
        var block = Int.random(in: 1000...9999, using: &system)
        while Set(String(block)).count == 1 { block = Int.random(in: 1000...9999, using: &system) }
        let qualifying: [InteractionType] = [.aiRecommendation, .faceAnalysis, .appointmentBooking, .packageInquiry, .consultation, .costCalculator]
        let anonymous: [InteractionType] = [.pageView, .search, .communityEngagement, .registration]
        for index in 0..<count {
            let person = Int.random(in: 0..<people, using: &random)
            let session = "\(tag)-p\(person)-s\(Int.random(in: 0..<2, using: &random))"
            let withContact = Double.random(in: 0..<1, using: &random) < contactShare
            var type = withContact ? qualifying.randomElement(using: &random)! : (anonymous + qualifying).randomElement(using: &random)!
            if withContact, Int.random(in: 0..<10, using: &random) == 0 { type = .search }  // contact on a non-lead CTA
            var data: [String: JSONValue] = ["procedure": .string(["Botox", "Rhinoplasty", "Peel"].randomElement(using: &random)!)]
            if type == .costCalculator { data["get_quote"] = .bool(Bool.random(using: &random)) }
            let email = "p\(person)@\(tag).example.com"
            let contact = withContact
                ? InteractionEvent.Contact(name: "Person \(person)", phone: "+1 \(area) \(block) \(String(format: "%03d", person))", email: email)
                : nil
            let event = InteractionEvent(sessionID: session, type: type, occurredAt: Date().addingTimeInterval(Double(index) / 1000), contact: contact, data: data)
            events.append(event)
            if withContact, LeadRules.qualifies(event) { expectedLeadEmails.insert(email) }
        }
    }
}

/// Deterministic random numbers (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
