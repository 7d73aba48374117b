import Foundation
import LeadCore
import LeadStore
import Logging
import PostgresNIO
import Synchronization
import Testing

/// A scorer's batch while another transaction (another scorer's batch) holds one of its sessions: the rest of
/// the batch commits without waiting for it, the held event after it, and every event once (018).
@Suite struct ScorerTryLockTests {
    func scored(session: String, email: String? = nil) -> InteractionStore.ScoredInteraction {
        let event = email.map {
            InteractionEvent(sessionID: session, type: .faceAnalysis, sourcePage: "/try-lock", contact: .init(name: "Try Lock", email: $0))
        } ?? InteractionEvent(sessionID: session, type: .pageView, sourcePage: "/try-lock")
        return .init(event: event, score: InteractionScorer().score(event), lead: LeadRules.candidate(for: event))
    }

    /// A transaction on `holder` that has run `statements` and stays open, holding their locks, until released.
    struct HeldTransaction {
        let end: @Sendable () -> Void
        let task: Task<Void, any Error>

        /// Ends the transaction and waits for it.
        func release() async throws {
            end()
            try await task.value
        }
    }

    static func hold(_ statements: [PostgresQuery], on holder: DedicatedConnection) async throws -> HeldTransaction {
        let (released, release) = AsyncStream<Void>.makeStream()
        let (lockTaken, locked) = AsyncStream<Void>.makeStream()
        let task = Task {
            defer { locked.finish() }
            try await holder.withTransaction(logger: TestDatabase.logger) { connection in
                for statement in statements { _ = try await connection.query(statement, logger: TestDatabase.logger) }
                locked.yield()
                for await _ in released { break }
            }
        }
        var taken = false
        for await _ in lockTaken {
            taken = true
            break
        }
        if !taken { try await task.value }  // the holder failed before its locks were taken: its error
        return HeldTransaction(end: { release.yield() }, task: task)
    }

    @Test func eventsOfAHeldSessionWaitTheRestDoesNot() async throws {
        _ = try await SharedStack.shared.start()  // migrated database
        let tag = UUID().uuidString.prefix(8).lowercased()
        let held = "try-lock-held-\(tag)"
        let free = "try-lock-free-\(tag)"
        let configuration = try DatabaseConfiguration(url: TestEnvironment.databaseURL)
        let store = InteractionStore(connection: DedicatedConnection(configuration: configuration, logger: TestDatabase.logger))
        let holder = DedicatedConnection(configuration: configuration, logger: TestDatabase.logger)
        defer { Task { await store.close(); await holder.close() } }

        // Another transaction holds the session's lock, as lead_process_events takes it, until released.
        let holding = try await Self.hold(["SELECT pg_advisory_xact_lock(hashtextextended(\("s:" + held), 7))"], on: holder)

        // The free session's event makes a lead: its messages are handed over after its own commit.
        let batch = [scored(session: held), scored(session: free, email: "\(free)@example.com"), scored(session: held)]
        let handedOver = Mutex<[[OutboxMessage]]>([])
        let processing = Task {
            try await store.process(batch, logger: TestDatabase.logger) { messages in handedOver.withLock { $0.append(messages) } }
        }
        // The free session's interaction commits, and its messages are handed over, while the held one's still
        // waits for the lock.
        try await eventually("the free session's interaction committed") {
            try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(free)") == 1 ? true : nil
        }
        let firstHandover = try await eventually("the first transaction's messages handed over") { handedOver.withLock { $0.first } }
        #expect(firstHandover.map(\.routingKey) == ["lead.scored", "lead.created"])
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(held)") == 0)

        try await holding.release()
        let result = try await processing.value
        #expect(result.inserted == 3)
        #expect(result.deferred == 2)
        #expect(handedOver.withLock { $0.count } == 2, "one handover per transaction")
        #expect(handedOver.withLock { $0.flatMap { $0 } } == result.messages)
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(held)") == 2)

        // The same batch again (a redelivery) changes nothing.
        let again = try await store.process(batch, logger: TestDatabase.logger)
        #expect(again.inserted == 0 && again.duplicates == 3 && again.deferred == 0)
    }

    /// A person's lead reached through a key the holder does not have (another session, their email): in a
    /// batch of 100 keys or more the event still waits for the holder (024), and the rest of the batch does not.
    @Test func eventsReachingAHeldLeadThroughAnotherKeyWait() async throws {
        _ = try await SharedStack.shared.start()  // migrated database
        let tag = UUID().uuidString.prefix(8).lowercased()
        let firstSession = "try-lead-a-\(tag)"
        let secondSession = "try-lead-b-\(tag)"
        let free = "try-lead-free-\(tag)"
        let email = "try-lead-\(tag)@example.com"
        let configuration = try DatabaseConfiguration(url: TestEnvironment.databaseURL)
        let store = InteractionStore(connection: DedicatedConnection(configuration: configuration, logger: TestDatabase.logger))
        let holder = DedicatedConnection(configuration: configuration, logger: TestDatabase.logger)
        defer { Task { await store.close(); await holder.close() } }

        let created = try await store.process([scored(session: firstSession, email: email)], logger: TestDatabase.logger)
        #expect(created.leadsCreated == 1)
        let leadID = try #require(try await TestDatabase.scalar("SELECT lead_id FROM session_leads WHERE session_id = \(firstSession)", as: Int.self))

        // Another scorer's first transaction (a large batch) try-locked the first session and with it the
        // session's lead, and updated the lead: its row stays locked until that transaction ends.
        let holding = try await Self.hold(
            [
                "SELECT pg_advisory_xact_lock(hashtextextended(\("s:" + firstSession), 7)), pg_advisory_xact_lock(hashtextextended(\("l:\(leadID)"), 7))",
                "SELECT id FROM leads WHERE id = \(leadID) FOR NO KEY UPDATE",
            ],
            on: holder
        )

        // The same person's event in a second session, by email (no key in common with the holder's), in a
        // batch of 101 keys (two sessions with an email each, 97 sessions without).
        let fillers = (0..<97).map { scored(session: "try-lead-fill-\(tag)-\($0)") }
        let batch = [scored(session: secondSession, email: email), scored(session: free, email: "\(free)@example.com")] + fillers
        let processing = Task { try await store.process(batch, logger: TestDatabase.logger) }
        try await eventually("the free session's interaction committed") {
            try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(free)") == 1 ? true : nil
        }
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(secondSession)") == 0)

        try await holding.release()
        let result = try await processing.value
        #expect(result.inserted == 99)
        #expect(result.deferred == 1)
        #expect(try await TestDatabase.scalar("SELECT lead_id FROM user_interactions WHERE session_id = \(secondSession)", as: Int.self) == leadID)
        #expect(try await TestDatabase.count("SELECT count(*) FROM leads WHERE email_normalized = \(email)") == 1)
    }
}
