import AMQP
import LeadCore
import Testing

@Suite struct PendingConfirmsTests {
    let later = ContinuousClock.now.advanced(by: .seconds(60))

    func published(_ count: Int) -> PendingConfirms<Int> {
        var pending = PendingConfirms<Int>()
        for sequence in 1...count { pending.append(sequence: UInt64(sequence), waiter: sequence, deadline: later) }
        return pending
    }

    /// The broker acks a later tag alone, then the earlier ones with `multiple`: nothing is left waiting (an
    /// answered entry at the head used to keep `count` above 0, so a closing connection waited out its deadline
    /// and expiry logged "not confirmed in time" for publishes that had been).
    @Test func aSingleAckPastTheHeadThenAMultipleAckLeavesNothingPending() {
        var pending = published(3)
        var answered: [Int] = []
        #expect(pending.resolve(upTo: 3, multiple: false) { answered.append($0) } == 1)
        #expect(pending.count == 3)
        #expect(pending.resolve(upTo: 2, multiple: true) { answered.append($0) } == 2)
        #expect(answered == [3, 1, 2])
        #expect(pending.count == 0)
        #expect(!pending.hasExpired(before: later.advanced(by: .seconds(1))))
    }

    @Test func aTagIsAnsweredOnceAndAnUnknownTagAnswersNothing() {
        var pending = published(4)
        var answered: [Int] = []
        pending.resolve(upTo: 2, multiple: false) { answered.append($0) }
        #expect(pending.resolve(upTo: 2, multiple: false) { answered.append($0) } == 0)
        #expect(pending.resolve(upTo: 9, multiple: false) { answered.append($0) } == 0)
        #expect(pending.resolve(upTo: 3, multiple: true) { answered.append($0) } == 2)
        #expect(answered == [2, 1, 3])
        #expect(pending.count == 1)
    }

    @Test func expiryTakesTheOverdueOldestFirstAndSkipsAnsweredOnes() {
        let start = ContinuousClock.now
        var pending = PendingConfirms<Int>()
        for sequence in 1...4 {
            pending.append(sequence: UInt64(sequence), waiter: sequence, deadline: start.advanced(by: .seconds(sequence)))
        }
        pending.resolve(upTo: 2, multiple: false) { _ in }
        var expired: [Int] = []
        #expect(!pending.hasExpired(before: start))
        #expect(pending.hasExpired(before: start.advanced(by: .milliseconds(3500))))
        #expect(pending.expire(before: start.advanced(by: .milliseconds(3500))) { expired.append($0) } == 2)
        #expect(expired == [1, 3])
        #expect(pending.count == 1)
        var failed: [Int] = []
        #expect(pending.removeAll { failed.append($0) } == 1)
        #expect(failed == [4])
        #expect(pending.count == 0)
    }

    /// Acks in a random mix of single and multiple, over more entries than the compaction threshold: every
    /// waiter is answered exactly once, and nothing is pending once the last tag is answered.
    @Test(arguments: [1, 2, 3, 4, 5])
    func everyWaiterIsAnsweredOnceWhateverTheAckOrder(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let total = 5000
        var pending = published(total)
        var answers = [Int](repeating: 0, count: total + 1)
        var confirmedUpTo = 0
        while confirmedUpTo < total {
            let tag = min(total, confirmedUpTo + 1 + Int(random.next() % 8))
            if random.next() % 3 == 0 {
                pending.resolve(upTo: UInt64(tag), multiple: true) { answers[$0] += 1 }
                confirmedUpTo = tag
            } else {
                pending.resolve(upTo: UInt64(tag), multiple: false) { answers[$0] += 1 }
                if tag == total { pending.resolve(upTo: UInt64(total), multiple: true) { answers[$0] += 1 }; confirmedUpTo = total }
            }
        }
        #expect(answers.dropFirst().allSatisfy { $0 == 1 })
        #expect(pending.count == 0)
    }
}
