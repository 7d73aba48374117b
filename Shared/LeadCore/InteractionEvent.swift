import Foundation

/// A validated interaction, as lead-ingest publishes it to `leads.interactions`.
package struct InteractionEvent: Sendable, Equatable {
    package struct Contact: Sendable, Equatable {
        package var name: String?
        package var phone: String?
        package var email: String?

        package init(name: String? = nil, phone: String? = nil, email: String? = nil) {
            self.name = name
            self.phone = phone
            self.email = email
        }

        package var isEmpty: Bool { name == nil && phone == nil && email == nil }
    }

    package struct Consent: Sendable, Equatable {
        package var marketing: Bool?

        package init(marketing: Bool? = nil) {
            self.marketing = marketing
        }
    }

    package var eventID: UUID
    package var sessionID: String
    package var userID: Int64?
    package var type: InteractionType
    package var sourcePage: String?
    package var occurredAt: Date
    package var receivedAt: Date
    package var contact: Contact?
    package var consent: Consent?
    package var data: [String: JSONValue]

    package init(
        eventID: UUID = UUID.random(),
        sessionID: String,
        userID: Int64? = nil,
        type: InteractionType,
        sourcePage: String? = nil,
        occurredAt: Date = Date(),
        receivedAt: Date = Date(),
        contact: Contact? = nil,
        consent: Consent? = nil,
        data: [String: JSONValue] = [:]
    ) {
        self.eventID = eventID
        self.sessionID = sessionID
        self.userID = userID
        self.type = type
        self.sourcePage = sourcePage
        self.occurredAt = occurredAt
        self.receivedAt = receivedAt
        self.contact = contact
        self.consent = consent
        self.data = data
    }

    /// The routing key on `leads.interactions`.
    package var routingKey: String { "interaction.\(type.rawValue)" }

    package var dataValue: JSONValue { .object(data) }
}
