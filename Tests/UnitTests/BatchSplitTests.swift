import LeadCore
import LeadStore
import Testing

/// How a scorer's batch is split when another transaction holds some of its identity locks: the events free of
/// them go now, the rest (and whatever shares a key with something left out before it) wait, each in order.
@Suite struct BatchSplitTests {
    func item(_ session: String, email: String? = nil, phone: String? = nil) -> InteractionStore.ScoredInteraction {
        let event = InteractionEvent(
            sessionID: session, type: .faceAnalysis,
            contact: (email == nil && phone == nil) ? nil : .init(name: "Asha", phone: phone, email: email)
        )
        return .init(event: event, score: InteractionScorer().score(event), lead: LeadRules.candidate(for: event))
    }

    func sessions(_ items: [InteractionStore.ScoredInteraction]) -> [String] { items.map(\.event.sessionID) }

    @Test func nothingHeldKeepsTheWholeBatch() {
        let batch = [item("a"), item("b", email: "x@example.com")]
        let (now, later) = InteractionStore.split(batch, held: [])
        #expect(sessions(now) == ["a", "b"])
        #expect(later.isEmpty)
    }

    @Test func heldSessionOrContactWaits() {
        let batch = [item("a"), item("b", email: "X@Example.com"), item("c", phone: "+1 415 555 0100"), item("d")]
        let (now, later) = InteractionStore.split(batch, held: ["s:a", "e:x@example.com"])
        #expect(sessions(now) == ["c", "d"])
        #expect(sessions(later) == ["a", "b"])
    }

    @Test func laterEventsAboutAWaitingSessionOrPersonWaitToo() {
        // "a" waits for its session; the next event in session "a" and, through its email, the one after it in
        // session "z" follow it, so one person's events are never processed out of order. "b" is unrelated.
        let batch = [
            item("a", email: "p@example.com"), item("b"), item("a"), item("z", email: "p@example.com"), item("b"),
        ]
        let (now, later) = InteractionStore.split(batch, held: ["s:a"])
        #expect(sessions(now) == ["b", "b"])
        #expect(sessions(later) == ["a", "a", "z"])
    }

    @Test func anEarlierEventSharingAKeyStillGoesFirst() {
        // The first "m" event is free; the second is held through its email and waits. Order within "m" holds:
        // the first now, the second after.
        let batch = [item("m"), item("m", email: "held@example.com")]
        let (now, later) = InteractionStore.split(batch, held: ["e:held@example.com"])
        #expect(sessions(now) == ["m"])
        #expect(sessions(later) == ["m"])
    }
}
