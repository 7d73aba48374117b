import Foundation

/// An alert lead-alerts raises (CONTRACT section 9).
package struct Alert: Sendable, Equatable {
    package enum Kind: String, Sendable {
        case highScore = "high_score"
        case conversionOpportunity = "conversion_opportunity"
    }

    package var id: UUID
    package var kind: Kind
    /// At most one alert per key: the lead for a high score, the prompt for an opportunity.
    package var dedupeKey: String
    package var leadID: Int64?
    package var sessionID: String?
    /// The body of `alert.<kind>` and of the webhook.
    package var payload: JSONValue

    package var routingKey: String { "alert.\(kind.rawValue)" }
}

/// When `lead.scored` and `conversion.prompt` messages become alerts.
package struct AlertRules: Sendable {
    package var highScoreThreshold: Int
    package var opportunityThreshold: Int

    package init(highScoreThreshold: Int = 80, opportunityThreshold: Int = 85) {
        self.highScoreThreshold = highScoreThreshold
        self.opportunityThreshold = opportunityThreshold
    }

    /// `alert.high_score` on the crossing: the previous score (none for a new lead) was below the threshold
    /// and the new one reaches it.
    package func highScore(from scored: JSONValue, id: UUID = UUID.random()) -> Alert? {
        guard let leadID = scored["lead_id"]?.int64Value, let score = scored["lead_score"]?.int64Value else { return nil }
        let previous = scored["previous_score"]?.int64Value ?? 0
        guard previous < highScoreThreshold, score >= highScoreThreshold else { return nil }
        let reasons: [JSONValue] = (scored["breakdown"]?.arrayValue ?? []).compactMap { line in
            guard let rule = line["rule"]?.stringValue, let points = line["points"]?.int64Value else { return nil }
            return .string("\(rule) \(points >= 0 ? "+" : "")\(points)")
        }
        return Alert(
            id: id,
            kind: .highScore,
            dedupeKey: "high_score:\(leadID)",
            leadID: leadID,
            sessionID: nil,
            payload: .object([
                "alert_id": .string(id.lowercasedString), "lead_id": .int(leadID), "lead_score": .int(score),
                "source": scored["source"] ?? .null, "procedure_name": scored["procedure_name"] ?? .null,
                "reasons": .array(reasons),
            ])
        )
    }

    /// `alert.conversion_opportunity` for a prompted session whose intent reaches 85.
    package func opportunity(from prompt: JSONValue, id: UUID = UUID.random()) -> Alert? {
        guard let promptID = prompt["prompt_id"]?.stringValue, let sessionID = prompt["session_id"]?.stringValue,
            let intent = prompt["intent_score"]?.int64Value, intent >= opportunityThreshold
        else { return nil }
        return Alert(
            id: id,
            kind: .conversionOpportunity,
            dedupeKey: "conversion_opportunity:\(promptID)",
            leadID: nil,
            sessionID: sessionID,
            payload: .object([
                "alert_id": .string(id.lowercasedString), "session_id": .string(sessionID),
                "intent_score": .int(intent), "reason": prompt["reason"] ?? .null, "prompt_id": .string(promptID),
            ])
        )
    }
}

/// Exponential backoff with jitter for webhook retries: `base × 2^(attempt-1)`, capped, ±`jitter`.
package struct RetrySchedule: Sendable, Equatable {
    package var base: Duration
    package var cap: Duration
    package var jitter: Double
    /// After this long since the first attempt, a delivery is given up (and kept as `failed`).
    package var giveUpAfter: Duration

    package init(base: Duration = .seconds(5), cap: Duration = .seconds(3600), jitter: Double = 0.2, giveUpAfter: Duration = .seconds(24 * 3600)) {
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.giveUpAfter = giveUpAfter
    }

    package func delay(afterAttempt attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let exponent = Double(min(max(attempt - 1, 0), 30))
        let raw = min(seconds(base) * pow(2, exponent), seconds(cap))
        let factor = 1 + Double.random(in: -jitter...jitter, using: &generator)
        return .milliseconds(Int64(raw * factor * 1000))
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
