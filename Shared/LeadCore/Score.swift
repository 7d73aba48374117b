/// One line of a score's explanation: which rule gave how many points. The lines of a score add up to it.
package struct ScoreLine: Codable, Sendable, Equatable {
    package var rule: String
    package var points: Int

    package init(rule: String, points: Int) {
        self.rule = rule
        self.points = points
    }
}

/// A score with its explanation.
package struct Score: Sendable, Equatable {
    package static let maximum = 100
    package var value: Int
    package var breakdown: [ScoreLine]

    /// Adds up `lines`, appending a `cap` line for whatever the cap of 100 took off.
    package init(lines: [ScoreLine]) {
        let total = lines.reduce(0) { $0 + $1.points }
        var lines = lines
        if total > Self.maximum { lines.append(ScoreLine(rule: "cap", points: Self.maximum - total)) }
        self.value = min(total, Self.maximum)
        self.breakdown = lines
    }

    /// The modifiers among the lines, as the bits `user_interactions.modifiers` stores (SQL's
    /// `lead_modifiers(breakdown)` computes the same from a stored breakdown): 1 `budget_range:high`,
    /// 2 `urgency:immediate`, 4 `multiple_procedures`.
    package var modifierBits: Int {
        breakdown.reduce(0) { bits, line in
            switch line.rule {
            case InteractionScorer.Modifier.highBudget: bits | 1
            case InteractionScorer.Modifier.immediateUrgency: bits | 2
            case InteractionScorer.Modifier.multipleProcedures: bits | 4
            default: bits
            }
        }
    }
}

/// `high` from 70, `medium` from 40, else `low`.
package enum EngagementLevel: String, Codable, Sendable {
    case low, medium, high

    package init(score: Int) {
        self = score >= 70 ? .high : score >= 40 ? .medium : .low
    }
}
