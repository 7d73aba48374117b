/// Points per interaction type, as kept in `lead_scoring_rules` (CONTRACT section 6).
package struct ScoringRules: Sendable, Equatable {
    package var points: [InteractionType: Int]

    package init(points: [InteractionType: Int]) {
        self.points = points
    }

    /// The seeded rules; also what a scorer uses until it has read the table.
    package static let defaults = ScoringRules(points: [
        .appointmentBooking: 90,
        .consultation: 85,
        .faceAnalysis: 80,
        .packageInquiry: 75,
        .costCalculator: 70,
        .aiRecommendation: 60,
        .registration: 20,
        .communityEngagement: 10,
        .search: 5,
        .pageView: 1,
        .promptDismissed: 0,
    ])

    package func points(for type: InteractionType) -> Int { points[type] ?? 0 }
}
