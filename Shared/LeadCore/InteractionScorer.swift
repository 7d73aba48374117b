/// Scores one interaction: the rule points of its type plus the modifiers read from `data`, capped at 100.
package struct InteractionScorer: Sendable {
    package var rules: ScoringRules

    package static let multipleProceduresPoints = 15
    package static let highBudgetPoints = 20
    package static let immediateUrgencyPoints = 25

    /// The modifier rules' names, as breakdown lines show them.
    package enum Modifier {
        package static let multipleProcedures = "multiple_procedures"
        package static let highBudget = "budget_range:high"
        package static let immediateUrgency = "urgency:immediate"
    }

    package init(rules: ScoringRules = .defaults) {
        self.rules = rules
    }

    package func score(type: InteractionType, data: [String: JSONValue]) -> Score {
        var lines = [ScoreLine(rule: "type:\(type.rawValue)", points: rules.points(for: type))]
        if data["multiple_procedures"]?.boolValue == true || ProcedureExtractor.distinctProcedures(in: data).count >= 2 {
            lines.append(ScoreLine(rule: Modifier.multipleProcedures, points: Self.multipleProceduresPoints))
        }
        if data["budget_range"]?.stringValue?.lowercased() == "high" {
            lines.append(ScoreLine(rule: Modifier.highBudget, points: Self.highBudgetPoints))
        }
        if data["urgency"]?.stringValue?.lowercased() == "immediate" {
            lines.append(ScoreLine(rule: Modifier.immediateUrgency, points: Self.immediateUrgencyPoints))
        }
        return Score(lines: lines)
    }

    package func score(_ event: InteractionEvent) -> Score {
        score(type: event.type, data: event.data)
    }
}
