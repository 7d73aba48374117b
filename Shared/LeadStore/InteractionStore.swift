import Foundation
import LeadCore
import Logging
import PostgresNIO

/// The scorer's write path: a batch of scored interactions, persisted in one statement inside a transaction.
package struct InteractionStore: Sendable {
    /// What one batch did.
    package struct BatchResult: Sendable, Equatable {
        package var inserted = 0
        package var duplicates = 0
        package var leadsCreated = 0
        package var leadsUpdated = 0
        /// Events left for a second transaction because another transaction held one of their keys.
        package var deferred = 0
        /// The batch's outbox rows, committed and leased to this scorer (`OutboxStore.lease`), in commit order.
        package var messages: [OutboxMessage] = []

        package init() {}

        static func + (lhs: BatchResult, rhs: BatchResult) -> BatchResult {
            var sum = lhs
            sum.inserted += rhs.inserted
            sum.duplicates += rhs.duplicates
            sum.leadsCreated += rhs.leadsCreated
            sum.leadsUpdated += rhs.leadsUpdated
            sum.messages += rhs.messages
            sum.deferred += rhs.deferred
            return sum
        }
    }

    /// One interaction with everything the scorer computed for it, and its element of the batch's JSON (written
    /// when the interaction is scored, before its batch's turn at the database).
    package struct ScoredInteraction: Sendable {
        package let event: InteractionEvent
        package let score: Score
        package let lead: LeadCandidate
        let json: String
        /// The identity locks `lead_process_events` takes for it: its session, email and phone.
        package let lockKeys: [String]

        package init(event: InteractionEvent, score: Score, lead: LeadCandidate) {
            self.event = event
            self.score = score
            self.lead = lead
            json = Self.element(event: event, score: score, lead: lead)
            lockKeys = ["s:" + event.sessionID] + [lead.emailNormalized.map { "e:" + $0 }, lead.phoneNormalized.map { "p:" + $0 }].compactMap { $0 }
        }

        /// The element `lead_process_events` reads (see 012_scorer_fewer_statements.sql and 014): the event's
        /// fields without its raw contact and consent, then what the scorer computed. Written field by field
        /// (PostgreSQL reads it as jsonb, so the key order is free): building it as a dictionary, growing it by
        /// fourteen keys and writing it with sorted keys cost 9.2 µs an event in the micro-benchmark.
        private static func element(event: InteractionEvent, score: Score, lead: LeadCandidate) -> String {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(640)
            bytes.append(UInt8(ascii: "{"))
            event.writeFields(into: &bytes, contact: false)
            JSONWriter.writeKey("score", into: &bytes)
            bytes.append(contentsOf: String(score.value).utf8)
            JSONWriter.writeKey("breakdown", into: &bytes)
            bytes.append(UInt8(ascii: "["))
            for (offset, line) in score.breakdown.enumerated() {
                bytes.append(contentsOf: (offset == 0 ? #"{"rule":"# : #",{"rule":"#).utf8)
                JSONWriter.writeString(line.rule, into: &bytes)
                bytes.append(contentsOf: #","points":"#.utf8)
                bytes.append(contentsOf: String(line.points).utf8)
                bytes.append(UInt8(ascii: "}"))
            }
            bytes.append(UInt8(ascii: "]"))
            JSONWriter.writeKey("modifiers", into: &bytes)
            bytes.append(contentsOf: String(score.modifierBits).utf8)
            JSONWriter.writeKey("can_create", into: &bytes)
            bytes.append(contentsOf: (lead.canCreateLead ? "true" : "false").utf8)
            func text(_ key: StaticString, _ value: String?) {
                JSONWriter.writeKey(key, into: &bytes)
                if let value { JSONWriter.writeString(value, into: &bytes) } else { bytes.append(contentsOf: "null".utf8) }
            }
            text("source", lead.source)
            text("procedure_name", lead.procedureName)
            text("message", lead.message)
            text("name", lead.name)
            text("email", lead.email)
            text("phone", lead.phone)
            text("email_normalized", lead.emailNormalized)
            text("phone_normalized", lead.phoneNormalized)
            bytes.append(UInt8(ascii: "}"))
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    let connection: DedicatedConnection

    package init(connection: DedicatedConnection) {
        self.connection = connection
    }

    /// Writes the batch: interactions (idempotent on `event_id`), leads, ledger, outbox. Events whose session or
    /// contact another transaction (another scorer's batch) has locked wait for a second transaction, so the rest
    /// does not wait for that one to commit (018_scorer_try_locks.sql); either transaction's effects are whole.
    /// Each transaction's outbox rows, committed and leased to the caller, go to `committed` right after its
    /// commit (so the first transaction's messages do not wait for the second), and are in the result too.
    package func process(
        _ batch: [ScoredInteraction],
        logger: Logger,
        committed: @Sendable ([OutboxMessage]) -> Void = { _ in }
    ) async throws -> BatchResult {
        let (first, deferred) = try await connection.withTransaction(logger: logger) { connection in
            var held: [String] = []
            let keys = batch.flatMap(\.lockKeys)
            for try await value in try await connection.execute(TryLockKeys(keys: keys), logger: logger) { held = value }
            let (now, later) = Self.split(batch, held: Set(held))
            // The try-lock took every key of `now` for this transaction: the batch function need not take them.
            let result = now.isEmpty ? BatchResult() : try await Self.write(now, keysLocked: true, on: connection, logger: logger)
            return (result, later)
        }
        committed(first.messages)
        guard !deferred.isEmpty else { return first }
        var second = try await connection.withTransaction(logger: logger) { connection in
            try await Self.write(deferred, keysLocked: false, on: connection, logger: logger)
        }
        committed(second.messages)
        second.deferred = deferred.count
        return first + second
    }

    /// The events none of whose keys is in `held`, and the others, each in batch order. An event that shares a
    /// key with one left out before it is left out too, so events about one session or person keep their order.
    package static func split(_ batch: [ScoredInteraction], held: Set<String>) -> (now: [ScoredInteraction], later: [ScoredInteraction]) {
        guard !held.isEmpty else { return (batch, []) }
        var blocked = held
        var now: [ScoredInteraction] = []
        var later: [ScoredInteraction] = []
        now.reserveCapacity(batch.count)
        for item in batch {
            if item.lockKeys.contains(where: blocked.contains) {
                later.append(item)
                blocked.formUnion(item.lockKeys)
            } else {
                now.append(item)
            }
        }
        return (now, later)
    }

    /// The batch as `lead_process_events` reads it: a JSON array of the items' elements.
    package static func batchJSON(_ batch: [ScoredInteraction]) -> String {
        "[" + batch.map(\.json).joined(separator: ",") + "]"
    }

    private static func write(
        _ batch: [ScoredInteraction], keysLocked: Bool, on connection: PostgresConnection, logger: Logger
    ) async throws -> BatchResult {
        let json = batchJSON(batch)
        var result = BatchResult()
        let statement = ProcessEvents(events: json, leaseSeconds: OutboxStore.leaseSeconds, keysLocked: keysLocked)
        for try await (counts, messages) in try await connection.execute(statement, logger: logger) {
            (result.inserted, result.duplicates, result.leadsCreated, result.leadsUpdated) = counts
            result.messages = messages
        }
        return result
    }

    package func close() async {
        await connection.close()
    }
}
