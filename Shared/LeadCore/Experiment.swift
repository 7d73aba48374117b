import Foundation

/// The prompt experiment's read-out: per variant, how many prompted sessions converted, with a 95%
/// confidence interval, and whether the variants differ (two-proportion z-test, two-sided, α = 0.05).
package struct ExperimentReport: Sendable, Equatable, Encodable {
    package struct Arm: Sendable, Equatable, Encodable {
        package var variant: String
        package var sessions: Int
        package var prompts: Int
        package var promptedSessions: Int
        package var conversions: Int
        package var conversionRate: Double
        package var confidenceLow: Double
        package var confidenceHigh: Double

        enum CodingKeys: String, CodingKey {
            case variant, sessions, prompts, conversions
            case promptedSessions = "prompted_sessions", conversionRate = "conversion_rate"
            case confidenceLow = "ci95_low", confidenceHigh = "ci95_high"
        }
    }

    package var arms: [Arm]
    package var zScore: Double?
    package var pValue: Double?
    package var significant: Bool

    enum CodingKeys: String, CodingKey {
        case arms = "variants", zScore = "z", pValue = "p_value", significant
    }

    /// `counts`: per variant, (sessions, prompts, prompted sessions, converted sessions).
    package init(counts: [(variant: String, sessions: Int, prompts: Int, promptedSessions: Int, conversions: Int)]) {
        arms = counts.map { count in
            let (low, high) = Self.wilsonInterval(successes: count.conversions, trials: count.promptedSessions)
            return Arm(
                variant: count.variant,
                sessions: count.sessions,
                prompts: count.prompts,
                promptedSessions: count.promptedSessions,
                conversions: count.conversions,
                conversionRate: count.promptedSessions == 0 ? 0 : Double(count.conversions) / Double(count.promptedSessions),
                confidenceLow: low,
                confidenceHigh: high
            )
        }
        if arms.count == 2, let z = Self.twoProportionZ(arms[0], arms[1]) {
            zScore = z
            pValue = 2 * (1 - Self.normalCDF(abs(z)))
            significant = pValue! < 0.05
        } else {
            zScore = nil
            pValue = nil
            significant = false
        }
    }

    /// Wilson score interval at 95%: sound for small counts and rates near 0 or 1.
    package static func wilsonInterval(successes: Int, trials: Int, z: Double = 1.959964) -> (Double, Double) {
        guard trials > 0 else { return (0, 0) }
        let n = Double(trials)
        let p = Double(successes) / n
        let denominator = 1 + z * z / n
        let center = (p + z * z / (2 * n)) / denominator
        let margin = z * ((p * (1 - p) + z * z / (4 * n)) / n).squareRoot() / denominator
        return (max(0, center - margin), min(1, center + margin))
    }

    /// Pooled two-proportion z statistic; nil when it is undefined (no trials, or no variance).
    package static func twoProportionZ(_ first: Arm, _ second: Arm) -> Double? {
        let n1 = Double(first.promptedSessions)
        let n2 = Double(second.promptedSessions)
        guard n1 > 0, n2 > 0 else { return nil }
        let pooled = Double(first.conversions + second.conversions) / (n1 + n2)
        let standardError = (pooled * (1 - pooled) * (1 / n1 + 1 / n2)).squareRoot()
        guard standardError > 0 else { return nil }
        return (Double(first.conversions) / n1 - Double(second.conversions) / n2) / standardError
    }

    package static func normalCDF(_ x: Double) -> Double {
        0.5 * erfc(-x / 2.squareRoot())
    }
}
