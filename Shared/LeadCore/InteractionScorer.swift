/// Scores one interaction: the rule points of its type plus the modifiers read from `data`, capped at 100.
package struct InteractionScorer: Sendable {
    package var rules: ScoringRules

    package static let multipleProceduresPoints = 15
    package static let highBudgetPoints = 20
    package static let immediateUrgencyPoints = 25

    package init(rules: ScoringRules = .defaults) {
        self.rules = rules
    }

    package func score(type: InteractionType, data: [String: JSONValue]) -> Score {
        var lines = [ScoreLine(rule: "type:\(type.rawValue)", points: rules.points(for: type))]
        if data["multiple_procedures"]?.boolValue == true || ProcedureExtractor.distinctProcedures(in: data).count >= 2 {
            lines.append(ScoreLine(rule: "multiple_procedures", points: Self.multipleProceduresPoints))
        }
        if data["budget_range"]?.stringValue?.lowercased() == "high" {
            lines.append(ScoreLine(rule: "budget_range:high", points: Self.highBudgetPoints))
        }
        if data["urgency"]?.stringValue?.lowercased() == "immediate" {
            lines.append(ScoreLine(rule: "urgency:immediate", points: Self.immediateUrgencyPoints))
        }
        return Score(lines: lines)
    }

    package func score(_ event: InteractionEvent) -> Score {
        score(type: event.type, data: event.data)
    }
}
