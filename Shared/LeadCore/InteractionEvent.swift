import Foundation

/// A validated interaction, as lead-ingest publishes it to `leads.interactions`.
package struct InteractionEvent: Codable, Sendable, Equatable {
    package struct Contact: Codable, Sendable, Equatable {
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

    package struct Consent: Codable, Sendable, Equatable {
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
        eventID: UUID = UUID(),
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

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id"
        case sessionID = "session_id"
        case userID = "user_id"
        case type
        case sourcePage = "source_page"
        case occurredAt = "occurred_at"
        case receivedAt = "received_at"
        case contact, consent, data
    }

    /// The routing key on `leads.interactions`.
    package var routingKey: String { "interaction.\(type.rawValue)" }

    package var dataValue: JSONValue { .object(data) }
}

extension InteractionEvent {
    /// Encodes with the event id in lower case, as the contract shows it.
    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(eventID.uuidString.lowercased(), forKey: .eventID)
        try container.encode(sessionID, forKey: .sessionID)
        try container.encodeIfPresent(userID, forKey: .userID)
        try container.encode(type, forKey: .type)
        try container.encodeIfPresent(sourcePage, forKey: .sourcePage)
        try container.encode(occurredAt, forKey: .occurredAt)
        try container.encode(receivedAt, forKey: .receivedAt)
        try container.encodeIfPresent(contact, forKey: .contact)
        try container.encodeIfPresent(consent, forKey: .consent)
        try container.encode(data, forKey: .data)
    }

    /// The wire format: snake_case keys, RFC 3339 dates with milliseconds.
    package func encoded() throws -> Data {
        try JSONCoding.encoder.encode(self)
    }

    package static func decode(_ data: Data) throws -> InteractionEvent {
        try JSONCoding.decoder.decode(InteractionEvent.self, from: data)
    }
}
