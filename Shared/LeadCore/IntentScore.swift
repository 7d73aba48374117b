import Foundation

/// A session's intent (CONTRACT section 8): the highest base points among its interactions, +5 per further
/// distinct type, +10 once 3 or more interactions fall within 10 minutes, capped at 100.
package enum IntentScore {
    package static let distinctTypeBonus = 5
    package static let burstBonus = 10
    package static let burstCount = 3
    package static let burstWindow: TimeInterval = 10 * 60

    package static func compute(_ state: SessionState) -> Int {
        var score = state.maxPoints
        score += distinctTypeBonus * max(0, state.types.count - 1)
        if hasBurst(state.recentTimes) { score += burstBonus }
        return min(score, Score.maximum)
    }

    /// Whether any `burstCount` interactions fall within `burstWindow` (order of arrival does not matter).
    package static func hasBurst(_ times: [Date]) -> Bool {
        guard times.count >= burstCount else { return false }
        let sorted = times.sorted()
        for start in 0...(sorted.count - burstCount)
        where sorted[start + burstCount - 1].timeIntervalSince(sorted[start]) <= burstWindow {
            return true
        }
        return false
    }
}
