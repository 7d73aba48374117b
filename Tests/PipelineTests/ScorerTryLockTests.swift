import Foundation
import LeadCore
import LeadStore
import Logging
import PostgresNIO
import Testing

/// A scorer's batch while another transaction (another scorer's batch) holds one of its sessions: the rest of
/// the batch commits without waiting for it, the held event after it, and every event once (018).
@Suite struct ScorerTryLockTests {
    func scored(session: String) -> InteractionStore.ScoredInteraction {
        let event = InteractionEvent(sessionID: session, type: .pageView, sourcePage: "/try-lock")
        return .init(event: event, score: InteractionScorer().score(event), lead: LeadRules.candidate(for: event))
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
        let (released, release) = AsyncStream<Void>.makeStream()
        let (lockTaken, locked) = AsyncStream<Void>.makeStream()
        let holding = Task {
            try await holder.withTransaction(logger: TestDatabase.logger) { connection in
                _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\("s:" + held), 7))", logger: TestDatabase.logger)
                locked.yield()
                for await _ in released { break }
            }
        }
        for await _ in lockTaken { break }

        let batch = [scored(session: held), scored(session: free), scored(session: held)]
        let processing = Task { try await store.process(batch, logger: TestDatabase.logger) }
        // The free session's interaction commits while the held one's still waits for the lock.
        try await eventually("the free session's interaction committed") {
            try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(free)") == 1 ? true : nil
        }
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(held)") == 0)

        release.yield()
        try await holding.value
        let result = try await processing.value
        #expect(result.inserted == 3)
        #expect(result.deferred == 2)
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(held)") == 2)

        // The same batch again (a redelivery) changes nothing.
        let again = try await store.process(batch, logger: TestDatabase.logger)
        #expect(again.inserted == 0 && again.duplicates == 3 && again.deferred == 0)
    }
}
