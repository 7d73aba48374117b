import AMQP
import Foundation
import LeadService
import PostgresNIO
import Testing

/// The scorer's effects are exactly once over an at-least-once broker: killed mid-stream, doubled, or
/// with its database stopped, every event is stored once and every person has exactly one lead.
@Suite(.serialized) struct ScorerResilienceTests {
    static let people = 400
    static let eventCount = 5000

    func scorer(_ stack: PrivateStack, label: String) async throws -> ServiceProcess {
        let port = TestEnvironment.freePort()
        return try await ServiceProcess.start(
            "lead-scorer",
            // Debug logs name each service as the group stops it, so a slow shutdown says which one held it.
            environment: stack.environment.merging(["SCORER_METRICS_PORT": "\(port)", "LOG_LEVEL": "debug"]) { $1 },
            readyPort: port,
            label: label
        )
    }

    /// Waits until every event of the stream is stored and the outbox is drained, then checks the invariants.
    func verify(_ stream: SyntheticStream, database: PostgresClient, tap: EventTap, stack: PrivateStack) async throws {
        let pattern = "\(stream.tag)-%"
        try await eventually("all \(stream.events.count) events stored", timeout: .seconds(120), every: .milliseconds(200)) {
            try await database.count("SELECT count(*) FROM user_interactions WHERE session_id LIKE \(pattern)") == stream.events.count ? true : nil
        }
        #expect(try await database.count("SELECT count(DISTINCT event_id) FROM user_interactions WHERE session_id LIKE \(pattern)") == stream.events.count)
        let domain = "%@\(stream.tag).example.com"
        var leadEmails = Set<String>()
        for try await email in try await database.query(
            "SELECT email_normalized FROM leads WHERE email_normalized LIKE \(domain)", logger: TestDatabase.logger
        ).decode(String.self) {
            leadEmails.insert(email)
        }
        #expect(
            leadEmails == stream.expectedLeadEmails,
            "missing leads: \(stream.expectedLeadEmails.subtracting(leadEmails).sorted().prefix(10)), unexpected: \(leadEmails.subtracting(stream.expectedLeadEmails).sorted().prefix(10))"
        )
        #expect(try await database.count(
            "SELECT count(*) FROM (SELECT email_normalized FROM leads WHERE email_normalized LIKE \(domain) GROUP BY 1 HAVING count(*) > 1) d"
        ) == 0)
        // Every ledger group adds up to the score it explains.
        #expect(try await database.count(
            """
            SELECT count(*) FROM (
                SELECT g.lead_id FROM lead_score_ledger g JOIN leads l ON l.id = g.lead_id
                WHERE l.email_normalized LIKE \(domain)
                GROUP BY g.lead_id, g.event_id, g.lead_score HAVING sum(g.points) <> g.lead_score) bad
            """
        ) == 0)
        try await eventually("outbox drained", timeout: .seconds(60)) {
            try await database.count("SELECT count(*) FROM outbox") == 0 ? true : nil
        }
        var leadIDs = Set<Int>()
        for try await id in try await database.query("SELECT id FROM leads WHERE email_normalized LIKE \(domain)", logger: TestDatabase.logger).decode(Int.self) {
            leadIDs.insert(id)
        }
        try await eventually("a lead.created for each of \(leadIDs.count) leads", timeout: .seconds(30)) {
            let announced = Set(tap.messages(routingKey: "lead.created") { _ in true }.compactMap { delivery -> Int? in
                let object = try? JSONSerialization.jsonObject(with: delivery.body) as? [String: Any]
                return object?["id"] as? Int
            })
            return leadIDs.isSubset(of: announced) ? true : nil
        }
        // At least once, but always under one message id per lead: consumers can dedupe.
        var idsByLead: [Int: Set<String>] = [:]
        for delivery in tap.messages(routingKey: "lead.created", where: { _ in true }) {
            let object = try JSONSerialization.jsonObject(with: delivery.body) as? [String: Any]
            guard let id = object?["id"] as? Int, leadIDs.contains(id) else { continue }
            idsByLead[id, default: []].insert(delivery.messageID ?? "")
        }
        #expect(idsByLead.values.allSatisfy { $0.count == 1 })
        #expect(try await stack.broker.messageCount("scorer.interactions.dead") == 0)
        // The funnel's daily counts (the batch function keeps the leads') agree with the rows they count.
        #expect(try await database.rollupMismatches() == 0)
    }

    @Test func killedScorerIsReplacedWithoutLossOrDuplicates() async throws {
        let stack = try await PrivateStack.start(name: "scorer-kill", amqpPort: 5691, pgPort: 5441)
        let database = try stack.makeDatabaseClient()
        let tap = try await EventTap(routingKeys: ["lead.created"], amqpURL: stack.amqpURL)
        let stream = SyntheticStream(tag: "kill\(UUID().uuidString.prefix(6).lowercased())", people: Self.people, events: Self.eventCount)
        try await stack.publish(stream.events)

        let first = try await scorer(stack, label: "scorer-kill-a")
        let pattern = "\(stream.tag)-%"
        try await eventually("the first scorer is mid-stream", timeout: .seconds(60), every: .milliseconds(20)) {
            try await database.count("SELECT count(*) FROM user_interactions WHERE session_id LIKE \(pattern)") >= 1000 ? true : nil
        }
        first.kill()
        let stored = try await database.count("SELECT count(*) FROM user_interactions WHERE session_id LIKE \(pattern)")
        #expect(stored < stream.events.count, "killed before the end of the stream")
        let second = try await scorer(stack, label: "scorer-kill-b")
        try await verify(stream, database: database, tap: tap, stack: stack)
        try await second.terminate()
        #expect(second.exitStatus == 0)
        await tap.close()
        await stack.stop()  // on a failure, scripts/test.sh stops it
    }

    @Test func twoScorersOnOneStreamMakeOneLeadPerPerson() async throws {
        let stack = try await PrivateStack.start(name: "scorer-pair", amqpPort: 5692, pgPort: 5442)
        let database = try stack.makeDatabaseClient()
        let tap = try await EventTap(routingKeys: ["lead.created"], amqpURL: stack.amqpURL)
        // Few people, many events each: the two scorers race on the same person all the time.
        let stream = SyntheticStream(tag: "pair\(UUID().uuidString.prefix(6).lowercased())", people: 60, events: Self.eventCount, contactShare: 0.5)
        try await stack.publish(stream.events)
        async let first = scorer(stack, label: "scorer-pair-a")
        async let second = scorer(stack, label: "scorer-pair-b")
        let scorers = try await [first, second]
        try await verify(stream, database: database, tap: tap, stack: stack)
        for scorer in scorers {
            try await scorer.terminate()
            #expect(scorer.exitStatus == 0)
        }
        await tap.close()
        await stack.stop()  // on a failure, scripts/test.sh stops it
    }

    @Test func databaseStoppedForTenSecondsLosesNothing() async throws {
        let stack = try await PrivateStack.start(name: "scorer-pg", amqpPort: 5693, pgPort: 5443)
        let database = try stack.makeDatabaseClient()
        let tap = try await EventTap(routingKeys: ["lead.created"], amqpURL: stack.amqpURL)
        let stream = SyntheticStream(tag: "pg\(UUID().uuidString.prefix(6).lowercased())", people: Self.people, events: 3000)
        let scorer = try await scorer(stack, label: "scorer-pg")
        let publishing = Task { try await stack.publish(stream.events) }
        let pattern = "\(stream.tag)-%"
        try await eventually("the scorer is mid-stream", timeout: .seconds(60), every: .milliseconds(20)) {
            try await database.count("SELECT count(*) FROM user_interactions WHERE session_id LIKE \(pattern)") >= 300 ? true : nil
        }
        try await stack.stopDatabase()
        // The outage itself is the test's subject: ten seconds without a database.
        try await Task.sleep(for: .seconds(10))
        #expect(scorer.isRunning)
        try await stack.startDatabase()
        try await publishing.value
        try await verify(stream, database: database, tap: tap, stack: stack)
        try await scorer.terminate()
        await tap.close()
        await stack.stop()  // on a failure, scripts/test.sh stops it
    }
}

extension PrivateBroker {
    /// Ready messages in a queue, read through a short-lived connection.
    func messageCount(_ queue: String) async throws -> Int {
        let connection = AMQPConnection(
            configuration: try AMQPConfiguration(url: url),
            name: "test-count",
            logger: .init(label: "test-count")
        )
        defer { Task { await connection.close() } }
        guard await connection.waitUntilConnected(timeout: .seconds(10)) else { throw TestFailure("cannot connect") }
        return try await connection.messageCount(queue: queue)
    }
}
