import Foundation

/// What lead-conversion knows about one browsing session (CONTRACT section 8).
package struct SessionState: Sendable, Equatable, Codable {
    package enum Variant: String, Sendable, Codable, CaseIterable {
        case a = "A"
        case b = "B"

        /// A stable half of sessions gets variant B: FNV-1a of the session id, odd hashes.
        package init(sessionID: String) {
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in sessionID.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            self = hash & 1 == 1 ? .b : .a
        }
    }

    package var variant: Variant
    package var interactionCount = 0
    /// Distinct interaction types seen, with the highest base points among them.
    package var types: Set<String> = []
    package var maxPoints = 0
    /// The latest interaction times (at most `maxRecentTimes`), for the "3 within 10 minutes" bonus.
    package var recentTimes: [Date] = []
    /// Contact fields the session has given: `name`, `phone`, `email`.
    package var contactFields: Set<String> = []
    package var prompts = 0
    package var lastPromptAt: Date?
    /// No prompt before this time (marketing consent withdrawn, or a prompt dismissed).
    package var suppressedUntil: Date?
    package var lastSeenAt: Date?
    /// The prompt not yet answered with contact details.
    package var openPromptID: UUID?
    package var openPromptAt: Date?

    package static let maxRecentTimes = 50

    package init(variant: Variant) {
        self.variant = variant
    }

    /// A contact detail the conversion service can ask for.
    package static let askableFields = ["name", "phone", "email"]

    /// The contact fields not given yet, in the order a form asks for them.
    package var missingFields: [String] { Self.askableFields.filter { !contactFields.contains($0) } }

    /// A phone or an email is known: the session can be reached, no prompt needed.
    package var hasContact: Bool { contactFields.contains("phone") || contactFields.contains("email") }
}
