import Foundation

/// What a lead made from an interaction looks like (CONTRACT section 7): whether the interaction may
/// create one, and its `source`, `procedure_name` and `message`.
package struct LeadCandidate: Sendable, Equatable {
    /// The interaction may create a lead (its type qualifies and it has a usable contact).
    package var canCreateLead: Bool
    package var source: String?
    package var procedureName: String?
    package var message: String?
    package var name: String?
    package var email: String?
    package var phone: String?
    package var emailNormalized: String?
    package var phoneNormalized: String?

    /// A usable (non-placeholder) email or phone.
    package var hasContact: Bool { emailNormalized != nil || phoneNormalized != nil }
}

package enum LeadRules {
    package static func candidate(for event: InteractionEvent) -> LeadCandidate {
        let emailNormalized = ContactNormalizer.email(event.contact?.email)
        let phoneNormalized = ContactNormalizer.phone(event.contact?.phone)
        let procedure = ProcedureExtractor.primaryProcedure(in: event.data)
        let hasContact = emailNormalized != nil || phoneNormalized != nil
        return LeadCandidate(
            canCreateLead: hasContact && qualifies(event),
            source: event.type.leadSource,
            procedureName: procedure,
            message: message(for: event, procedure: procedure),
            name: placeholderFreeName(event.contact?.name),
            email: emailNormalized == nil ? nil : event.contact?.email,
            phone: phoneNormalized == nil ? nil : event.contact?.phone,
            emailNormalized: emailNormalized,
            phoneNormalized: phoneNormalized
        )
    }

    /// The CTA types that make leads; a cost calculator only when the visitor asked for a quote.
    package static func qualifies(_ event: InteractionEvent) -> Bool {
        switch event.type {
        case .aiRecommendation, .faceAnalysis, .appointmentBooking, .packageInquiry, .consultation:
            true
        case .costCalculator:
            event.data["get_quote"]?.boolValue == true
        default:
            false
        }
    }

    static func message(for event: InteractionEvent, procedure: String?) -> String? {
        switch event.type {
        case .faceAnalysis:
            let count = event.data["recommendations"]?.arrayValue?.count ?? 0
            return "Face analysis completed with \(count) recommendations"
        case .costCalculator:
            let budget = ProcedureExtractor.nonEmpty(event.data["budget_range"]) ?? "not specified"
            return "Requested quote for \(procedure ?? "a procedure") - Budget: \(budget)"
        default:
            return ProcedureExtractor.nonEmpty(event.data["message"])
        }
    }

    static func placeholderFreeName(_ name: String?) -> String? {
        guard let name, !ContactNormalizer.placeholderWords.contains(name.lowercased()) else { return nil }
        return name
    }
}
