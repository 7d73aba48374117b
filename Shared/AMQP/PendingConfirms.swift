/// Publishes awaiting the broker's confirm, in publish-sequence order (the delivery tags of a confirm-mode
/// channel). The broker acks or nacks a tag alone or, with `multiple`, every tag up to it, in any mix, so a tag
/// can be answered while an earlier one is still waiting.
///
/// The first entry still counted is always one nobody has answered: `count` is 0 exactly when every publish has
/// its answer, and expiry looks at the oldest live publish only.
package struct PendingConfirms<Waiter> {
    private struct Entry {
        var sequence: UInt64
        var waiter: Waiter?
        var deadline: ContinuousClock.Instant
    }

    private var entries: [Entry] = []
    private var head = 0

    package init() {}

    /// Publishes not answered yet, plus answered ones behind the oldest unanswered (those go when it does).
    package var count: Int { entries.count - head }

    /// Records a publish; sequences must increase.
    package mutating func append(sequence: UInt64, waiter: Waiter, deadline: ContinuousClock.Instant) {
        entries.append(Entry(sequence: sequence, waiter: waiter, deadline: deadline))
    }

    /// Answers `tag`, or with `multiple` every tag up to it: `body` gets each waiter answered by this, once.
    /// Returns how many. A tag answered before, or never published, answers nothing.
    @discardableResult
    package mutating func resolve(upTo tag: UInt64, multiple: Bool, _ body: (Waiter) -> Void) -> Int {
        var resolved = 0
        if multiple {
            while head < entries.count, entries[head].sequence <= tag {
                if let waiter = entries[head].waiter {
                    body(waiter)
                    resolved += 1
                }
                head += 1
            }
        } else if let index = index(of: tag), let waiter = entries[index].waiter {
            body(waiter)
            entries[index].waiter = nil
            resolved = 1
        }
        dropAnswered()
        return resolved
    }

    /// Gives `body` every waiter whose deadline is before `now`, oldest first; returns how many.
    package mutating func expire(before now: ContinuousClock.Instant, _ body: (Waiter) -> Void) -> Int {
        var expired = 0
        while head < entries.count, entries[head].deadline < now {
            if let waiter = entries[head].waiter {
                body(waiter)
                expired += 1
            }
            head += 1
        }
        dropAnswered()
        return expired
    }

    /// Whether the oldest unanswered publish is past its deadline (cheap: one comparison).
    package func hasExpired(before now: ContinuousClock.Instant) -> Bool {
        head < entries.count && entries[head].deadline < now
    }

    /// Gives `body` every waiter still unanswered and forgets all; returns how many.
    package mutating func removeAll(_ body: (Waiter) -> Void) -> Int {
        var failed = 0
        for entry in entries[head...] {
            if let waiter = entry.waiter {
                body(waiter)
                failed += 1
            }
        }
        entries.removeAll(keepingCapacity: true)
        head = 0
        return failed
    }

    private func index(of tag: UInt64) -> Int? {
        var low = head
        var high = entries.count - 1
        while low <= high {
            let mid = (low + high) / 2
            if entries[mid].sequence == tag { return mid }
            if entries[mid].sequence < tag { low = mid + 1 } else { high = mid - 1 }
        }
        return nil
    }

    /// Moves the head past answered entries and reclaims the space before it now and then.
    private mutating func dropAnswered() {
        while head < entries.count, entries[head].waiter == nil { head += 1 }
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }
}
