import Foundation

/// A synthetic lead history drawn from a known hidden model, for `leadctl simulate`, tests and demos.
///
/// Each lead converts (booked or converted) with probability σ(z), where the hidden model is
///
///     z = -2.3
///         + 1.8 · urgency (the contact interaction said "immediate")
///         + 1.2 · budget (high budget range)
///         + 0.6 · several procedures
///         + 1.0 · ln(1 + page views before contact)
///         + 1.3 · [came back in a second session]
///         − 0.7 · ln(1 + hours from first interaction to contact)
///         + 0.9 · [prompted, in variant B]
///         + source effect: Appointment Booking +1.2, Consultation +0.7, Face Analysis +0.4,
///           AI Recommendation 0, Package Inquiry −0.2, Cost Calculator −0.8
///
/// The rule score of CONTRACT section 6 sees the source and the modifiers but not the browsing, the
/// sessions, the time to contact or the prompt, so a model trained on the features should beat it.
package struct LeadSimulation: Sendable {
    package struct Interaction: Sendable {
        package var type: InteractionType
        package var sessionIndex: Int
        package var occurredAt: Date
        package var data: JSONValue
        package var eventID: UUID
    }

    package struct Lead: Sendable {
        package var index: Int
        package var type: InteractionType
        package var createdAt: Date
        package var interactions: [Interaction]
        package var sessions: Int
        package var prompted: Bool
        package var variantB: Bool
        package var urgency: Bool
        package var budget: Bool
        package var multiple: Bool
        package var pageViews: Int
        package var hoursToContact: Double
        /// σ(z) of the hidden model.
        package var probability: Double
        package var status: String
        package var statusChangedAt: Date?
    }

    package static let sourceEffect: [InteractionType: Double] = [
        .appointmentBooking: 1.2, .consultation: 0.7, .faceAnalysis: 0.4, .aiRecommendation: 0, .packageInquiry: -0.2,
        .costCalculator: -0.8,
    ]

    /// The hidden model's linear term.
    package static func hiddenLogit(
        type: InteractionType, urgency: Bool, budget: Bool, multiple: Bool, pageViews: Int, sessions: Int,
        hoursToContact: Double, promptedB: Bool
    ) -> Double {
        -2.3 + (urgency ? 1.8 : 0) + (budget ? 1.2 : 0) + (multiple ? 0.6 : 0) + 1.0 * log(1 + Double(pageViews))
            + (sessions >= 2 ? 1.3 : 0) - 0.7 * log(1 + hoursToContact) + (promptedB ? 0.9 : 0) + (sourceEffect[type] ?? 0)
    }

    /// `count` leads created over the `days` before `now`, all from `seed`.
    package static func generate(count: Int, seed: UInt64, now: Date, days: Int = 180) -> [Lead] {
        var random = SplitMix64(seed: seed)
        let types: [(InteractionType, Double)] = [
            (.faceAnalysis, 0.25), (.aiRecommendation, 0.2), (.consultation, 0.15), (.packageInquiry, 0.15),
            (.costCalculator, 0.15), (.appointmentBooking, 0.1),
        ]
        let procedures = ["Rhinoplasty", "Botox", "Lip Fillers", "Hair Transplant", "Liposuction", "Chemical Peel"]
        return (0..<count).map { index in
            let pick = random.nextDouble()
            var cumulative = 0.0
            let type = types.first { cumulative += $0.1; return pick < cumulative }?.0 ?? .faceAnalysis
            let createdAt = now.addingTimeInterval(-random.nextDouble() * Double(days) * 86_400)
            let urgency = random.nextDouble() < 0.25
            let budget = random.nextDouble() < 0.2
            let multiple = random.nextDouble() < 0.2
            let pageViews = Int(random.nextDouble() * 9)
            let sessions = 1 + (random.nextDouble() < 0.35 ? 1 + Int(random.nextDouble() * 3) : 0)
            let hoursToContact = -log(1 - random.nextDouble() * 0.999) * 24  // exponential, mean 24 h
            let prompted = random.nextDouble() < 0.4
            let variantB = random.nextDouble() < 0.5
            let probability = LogisticRegression.sigmoid(
                hiddenLogit(
                    type: type, urgency: urgency, budget: budget, multiple: multiple, pageViews: pageViews, sessions: sessions,
                    hoursToContact: hoursToContact, promptedB: prompted && variantB
                )
            )
            let converts = random.nextDouble() < probability
            let delay = (1 + random.nextDouble() * 20) * 86_400
            let status: String
            var changedAt: Date? = createdAt.addingTimeInterval(delay)
            if converts {
                status = random.nextDouble() < 0.5 ? "converted" : "booked"
            } else if random.nextDouble() < 0.6 {
                status = "lost"
            } else {
                status = "new"
                changedAt = nil
            }
            if let at = changedAt, at > now { changedAt = now }

            // The history: browsing (page views and a search or two) from the first interaction on, spread
            // over the sessions, then the contact interaction that made the lead.
            let firstAt = createdAt.addingTimeInterval(-hoursToContact * 3600)
            var interactions: [Interaction] = []
            for view in 0..<pageViews {
                interactions.append(
                    Interaction(
                        type: view % 4 == 3 ? .search : .pageView, sessionIndex: Int(random.nextDouble() * Double(sessions)),
                        occurredAt: firstAt.addingTimeInterval(random.nextDouble() * hoursToContact * 3600), data: .object([:]),
                        eventID: random.nextUUID()
                    )
                )
            }
            var data: [String: JSONValue] = [:]
            let procedure = procedures[Int(random.nextDouble() * Double(procedures.count))]
            if multiple {
                data["recommendations"] = .array([.object(["procedure": .string(procedure)]), .object(["procedure": "Botox"])])
            } else {
                data["procedure"] = .string(procedure)
            }
            if urgency { data["urgency"] = "immediate" }
            if budget { data["budget_range"] = "high" }
            if type == .costCalculator { data["get_quote"] = true }
            interactions.append(
                Interaction(type: type, sessionIndex: 0, occurredAt: createdAt, data: .object(data), eventID: random.nextUUID())
            )
            if pageViews == 0, sessions > 1 {
                // A second session means the visitor came back: give it an interaction.
                interactions.append(
                    Interaction(type: .pageView, sessionIndex: 1, occurredAt: firstAt, data: .object([:]), eventID: random.nextUUID())
                )
            }
            return Lead(
                index: index, type: type, createdAt: createdAt, interactions: interactions.sorted { $0.occurredAt < $1.occurredAt },
                sessions: sessions, prompted: prompted, variantB: variantB, urgency: urgency, budget: budget, multiple: multiple,
                pageViews: pageViews, hoursToContact: hoursToContact, probability: probability, status: status,
                statusChangedAt: changedAt
            )
        }
    }
}

/// SplitMix64: small, fast, and the same sequence from the same seed on every platform.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    package mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }

    package mutating func nextUUID() -> UUID {
        let a = next()
        let b = next()
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: a >> (8 * i))
            bytes[8 + i] = UInt8(truncatingIfNeeded: b >> (8 * i))
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // variant
        return UUID(uuid: (
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
        ))
    }
}
